"""Writing a file so that no reader ever sees half of it: every file digitlab writes goes through here."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from digitlab.errors import WriteError


def utf8_name(text: str) -> str:
    """`text` (a file name, or a message naming one) as UTF-8 text: a name's bytes that are not UTF-8
    (held as surrogates, PEP 383) as backslash escapes, "caf\\xe9.png"; other text as it is. A
    terminal, a CSV reader or Arrow would otherwise fail on the name, or the whole output with it."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; rename it into place when the block ends.

    A reader sees the old file or the whole new one, never a part; if the block raises (an error,
    Ctrl-C), the temporary file is removed and `path` is left as it was. The temporary name is
    hidden, unique to this write, and ends with the same suffix, because some writers insist on
    one (Keras' `model.save` wants ".keras", NumPy's `savez` adds ".npz" otherwise).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise WriteError(f"{path}: is a folder; name a file to write, such as {path / ('result' + (path.suffix or '.png'))}.")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # os.replace would put the file in place of a device, a pipe or a link (as root, /dev/null itself)
        raise WriteError(f"{path}: not a regular file (a device, pipe, folder or link); digitlab writes only in place "
                         "of a file it would replace: name a new file.")
    # the stem cut short: a legal name of 255 bytes would make a temporary name too long to create
    tmp = path.with_name(f".{_temporary_stem(path)}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def write_errors(path: str | os.PathLike, what: str) -> Iterator[None]:
    """An OSError while writing `what` to `path` (a missing folder, a full disk) as one WriteError
    line; atomic_write's own WriteErrors (a folder, a device, a link in the way) pass as they are."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(f"{path}: cannot write {what} ({e.strerror or e}); check that the folder exists, is "
                         "writable and has space.") from None


def check_writable(path: str | os.PathLike) -> None:
    """A WriteError now if atomic_write could not write `path` later: for an output named before
    hours of work. Its folder must take a new file (one is made and deleted), and `path` must be
    absent or a regular file."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise WriteError(f"{path}: not a regular file (a device, pipe, folder or link); name a new file.")
    try:
        with atomic_write(path) as tmp:
            tmp.touch()
            raise _Probe
    except _Probe:
        pass
    except OSError as e:
        raise WriteError(f"{path}: cannot be written ({e.strerror or e}); name a file in a folder you can write to.") from None


class _Probe(Exception):
    """Ends check_writable's trial write before its file replaces anything."""


def _temporary_stem(path: Path) -> str:
    return shortened(path.stem, 60)


def temporaries(path: str | os.PathLike) -> list[Path]:
    """atomic_write's temporary files for `path` that are there: left behind only by a process
    killed mid-write (SIGKILL, power cut), when no process is writing `path` now."""
    path = Path(path)
    return [p for p in path.parent.glob(f".{glob.escape(_temporary_stem(path))}.*.tmp{glob.escape(path.suffix)}")
            if p.is_file() and not p.is_symlink()]


def shortened(name: str, max_bytes: int) -> str:
    """`name` cut to at most `max_bytes` bytes as the file system stores it (a CJK character is 3),
    never inside a character."""
    while len(os.fsencode(name)) > max_bytes:
        name = name[:-1]
    return name


def write_json(path: str | os.PathLike, data) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text`, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data`, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
