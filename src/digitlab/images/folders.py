"""The image files named on a command line: files as given, folders searched, and every path
that cannot be searched answered with its own error rather than stopping the batch or vanishing."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from digitlab.images.read import IMAGE_SUFFIXES, Unreadable


def expand(paths: Iterable[str | os.PathLike], skip: Iterable[str | os.PathLike] = ()) -> Iterator[Path | Unreadable]:
    """Files as given, and the image files inside folders (recursively, sorted), lazily; never
    inside the folders `skip` (where the command writes its own images: read, they would be
    answered along with the user's, and counted twice over).

    Hidden files and folders (".DS_Store", macOS's "._x.png") are left out of a folder's search, as
    a file browser does; links to folders are followed, each folder searched once. A path that
    cannot be searched (a folder that cannot be listed, one with no image file at all, a name
    whose folder cannot be entered) is an `Unreadable` whose message says why: silence there (a
    folder of .heic photos, a folder without permission) would look like success."""
    skipped = {Path(s).resolve() for s in skip}
    for p in map(Path, paths):
        try:
            folder = p.is_dir()
        except OSError as e:  # Python 3.11's is_dir raises on a folder that cannot be entered
            yield Unreadable(str(p), f"{p}: cannot open ({e.strerror or e}).")
            continue
        yield from _search(p, skipped) if folder else [p]


def _search(folder: Path, skipped: set[Path]) -> Iterator[Path | Unreadable]:
    found, others, hidden, failures, seen = 0, [], 0, [], {folder.resolve()}
    for root, dirs, files in os.walk(folder, onerror=failures.append, followlinks=True):
        found += len(failures)
        yield from _failed(failures)
        kept = []
        for d in sorted(dirs):
            real = (Path(root) / d).resolve()
            if not d.startswith(".") and real not in skipped and real not in seen:  # a link back up: once
                seen.add(real)
                kept.append(d)
        dirs[:] = kept
        hidden += sum(f.startswith(".") for f in files)
        for f in sorted(f for f in files if not f.startswith(".")):
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                found += 1
                yield Path(root) / f
            else:
                others.append(f)
    found += len(failures)
    yield from _failed(failures)
    if not found:  # nothing answered for the folder yet: say why
        held = (f"{len(others)} other file(s), such as {others[0]}" if others else
                f"only {hidden} hidden file(s), left out; name them to read them" if hidden else "nothing")
        yield Unreadable(str(folder), f"{folder}: no image files in the folder (it holds {held}); digitlab reads "
                                      f"{', '.join(sorted(IMAGE_SUFFIXES))}. Convert the images, e.g. to PNG.")


def _failed(failures: list[OSError]) -> Iterator[Unreadable]:
    while failures:
        e = failures.pop(0)
        yield Unreadable(str(e.filename), f"{e.filename}: cannot list the folder ({e.strerror or e}).")
