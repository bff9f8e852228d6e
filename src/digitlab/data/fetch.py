"""Download data files into a cache folder: checksum, progress bar, next mirror on failure.

pooch does the HTTP transfer (streaming, progress bar, temporary file, SHA-256 check, rename into
place); this module adds what it lacks: a list of mirrors tried in turn, local folders as mirrors
for offline machines, a file lock so that concurrent processes download once, and error messages
that say what was tried and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import platformdirs

from digitlab.data.registry import DataFile, Dataset
from digitlab.errors import FetchError
from digitlab.files import atomic_write, sha256_file, temporaries
from digitlab.threads import in_thread

CACHE_ENV = "DIGITLAB_CACHE"  # overrides the cache folder
MIRROR_ENV = "DIGITLAB_MIRROR"  # comma-separated URLs or folders laid out as <base>/<dataset>/<file>
TIMEOUT_S = 30  # per read: connecting, and each wait for more bytes
# The whole file must arrive at MIN_BYTES_PER_S on average, after DEADLINE_BASE_S of grace: 40 minutes
# for MNIST's largest file (47 MB at most; 9.9 MB as published), a minute for a labels file.
MIN_BYTES_PER_S = 20_000
DEADLINE_BASE_S = 60
LOCK_TIMEOUT_S = 600
# Errors of the cache folder, not of a mirror: trying the next mirror cannot help.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def default_cache_dir() -> Path:
    """`$DIGITLAB_CACHE` if set, else the user's cache folder (e.g. ~/.cache/digitlab)."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("digitlab"))


def mirrors_for(dataset: Dataset) -> list[str]:
    """The mirrors to try for `dataset`: `$DIGITLAB_MIRROR` replaces the public ones."""
    override = os.environ.get(MIRROR_ENV, "").strip()
    if not override:
        return list(dataset.mirrors)
    return [f"{m.strip().rstrip('/')}/{dataset.name}/" for m in override.split(",") if m.strip()]


def fetch_file(
    dataset: Dataset,
    datafile: DataFile,
    *,
    cache_dir: Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Return the path of a verified copy of `datafile` in the cache, downloading it if needed."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / dataset.name
    target = folder / datafile.filename
    if not force and _verified(target, datafile):
        if _leftovers(target):  # of a fetch --force killed since
            _remove_leftovers_if_free(target)
        return target
    import filelock  # here, not at the top: `digitlab predict` never fetches, and starts sooner without it

    lock = filelock.FileLock(str(target) + ".lock")
    if folder.exists() and not folder.is_dir():  # "make it writable" would mislead
        raise FetchError(f"{folder}: not a folder, where the cache keeps {dataset.name}'s files. Move it away, or set "
                         f"{CACHE_ENV} to another folder.")
    for path in (target, Path(lock.lock_file)):
        if path.exists() and not path.is_file():  # a folder, a device (a link to a file is the user's choice)
            raise FetchError(f"{path}: not a file, where the cache keeps one. Move it away, or set {CACHE_ENV} to "
                             "another folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except filelock.Timeout:
        raise FetchError(
            f"another process has been fetching {target} for {LOCK_TIMEOUT_S} s (lock file "
            f"{lock.lock_file}). Wait for it, or delete the lock file if no digitlab is running."
        ) from None
    except OSError as e:
        raise cache_error(folder, e) from None
    try:
        # Another process may have fetched it while we waited for the lock.
        if not force and _verified(target, datafile):
            return target
        _remove_leftovers(target)
        failures = []
        for mirror in mirrors if mirrors is not None else mirrors_for(dataset):
            try:
                _fetch_from(mirror, datafile, target, progress)
                return target
            except _MirrorFailed as e:
                failures.append(f"{mirror}{datafile.filename}: {e}")
            except _CacheUnwritable as e:
                raise cache_error(folder, e.error) from None
        data = os.environ.get("DIGITLAB_DATA")  # (digitlab.data.load.DATA_ENV, which imports this module)
        where = (f"put {dataset.name}/{datafile.filename} in DIGITLAB_DATA's folder, {data}, where the commands read "
                 "the files without a download (or name another folder with --data-dir)"
                 if data else "put the files in a folder and pass it with --data-dir (or set DIGITLAB_DATA)")
        lines = (f"could not fetch {dataset.name}/{datafile.filename} from any mirror:",
                 *(f"  {f}" for f in failures or ["(no mirrors configured)"]),
                 f"On a machine without internet, {where}, or set {MIRROR_ENV} to a folder or URL laid out as "
                 f"<base>/{dataset.name}/{datafile.filename}.")
        error = FetchError("\n".join(lines))
        error.lines = lines
        raise error
    finally:
        lock.release()


def _leftovers(target: Path) -> list[Path]:
    """What a fetch of `target` killed mid-way (SIGKILL, power cut) left beside it, hidden: its
    staging folders and atomic_write's temporary copies."""
    return [*target.parent.glob(f".download-{glob.escape(target.name)}-*"), *temporaries(target)]


def _remove_leftovers(target: Path) -> None:
    """Delete `_leftovers(target)`, which would otherwise pile up in the cache, unseen. The caller
    holds `target`'s lock: no living process is writing them."""
    for leftover in _leftovers(target):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _remove_leftovers_if_free(target: Path) -> None:
    """`_remove_leftovers` under `target`'s lock if it is free at once; if not, a fetch of the file
    is running, and the leftovers may be its own."""
    import filelock

    lock = filelock.FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=0)
    except (filelock.Timeout, OSError):
        return
    try:
        _remove_leftovers(target)
    finally:
        lock.release()


class _MirrorFailed(Exception):
    """One mirror could not provide a good copy; the next one is tried."""


class _CacheUnwritable(Exception):
    """The cache folder refused a write (full, read-only): no mirror can help."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def cache_error(folder: Path, e: OSError) -> FetchError:
    """A FetchError saying what the cache folder's problem is and what to do about it."""
    reason = e.strerror or str(e)
    if e.errno in DISK_FULL:
        advice = (f"Free some space there, or set {CACHE_ENV} to a folder on a disk with room "
                  "(a data set needs about 60 MB).")
    else:
        advice = f"Make it writable, or set {CACHE_ENV} to a folder you can write to."
    return FetchError(f"cannot write to the cache folder {folder} ({reason}); nothing was kept. {advice}")


def _check_write_error(e: BaseException) -> None:
    """Re-raise a full or read-only cache as _CacheUnwritable (pooch may wrap the OSError)."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in DISK_FULL + NOT_WRITABLE:
            raise _CacheUnwritable(e) from None
        e = e.__cause__ or e.__context__


def _verified(path: Path, datafile: DataFile) -> bool:
    try:
        return path.is_file() and sha256_file(path) == datafile.gz_sha256
    except OSError:  # unreadable: treat as absent, a fresh copy replaces it
        return False


def _fetch_from(mirror: str, datafile: DataFile, target: Path, progress: bool) -> None:
    if "://" not in mirror or mirror.startswith("file://"):
        _copy_from_folder(Path(mirror.removeprefix("file://")), datafile, target)
        return
    url = mirror if mirror.endswith("/") else mirror + "/"
    url += datafile.filename
    import pooch  # here, not at the top: 0.14 s of imports (requests, tqdm) that only a download needs

    pooch.get_logger().setLevel(logging.WARNING)  # pooch keeps its own logger, outside logging.getLogger
    # pooch downloads to a temporary file, checks the hash, then renames. It does so in a
    # staging folder beside the cache file, so that a forced re-download replaces the cached
    # copy only once the new one is verified.
    try:
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".download-{target.name}-"))
    except OSError as e:
        _check_write_error(e)
        raise _MirrorFailed(f"cannot create a temporary folder in {target.parent}: {e}") from None
    limit = _most_bytes(datafile)
    deadline = _Deadline(DEADLINE_BASE_S + limit / MIN_BYTES_PER_S)
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT_S, hooks={"response": deadline.watch})
    try:
        fetched = deadline.run(lambda: pooch.retrieve(
            url,
            known_hash=f"sha256:{datafile.gz_sha256}",
            fname=target.name,
            path=staging,
            downloader=_capped(downloader, limit, deadline),
        ))
        os.replace(fetched, target)
    except ValueError as e:
        if "hash" in str(e):  # pooch's checksum mismatch
            raise _MirrorFailed(f"checksum mismatch, the file is corrupt or cut off ({_first_line(e)})") from None
        raise _MirrorFailed(f"{type(e).__name__}: {_first_line(e)}") from None  # e.g. an invalid URL
    except Exception as e:  # requests' connection, HTTP and truncation errors
        _check_write_error(e)
        if deadline.expired:
            raise _MirrorFailed(f"too slow: the file was not complete after {deadline.seconds:.0f} s "
                                f"(under {MIN_BYTES_PER_S // 1000} KB/s); stopped") from None
        raise _MirrorFailed(f"{type(e).__name__}: {_first_line(e)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Deadline:
    """Stops a download still running after `seconds`. requests' timeout is per read, so a mirror
    sending a byte every few seconds, of its headers or of the file, would hold `fetch` for ever.

    The download runs in a thread the caller stops waiting for at the deadline. Once the headers
    are in, urllib3's `HTTPResponse.shutdown` (made for this) also ends the blocked read at once; a
    thread still reading headers is left to its daemon end, and `_Capped` refuses its writes."""

    def __init__(self, seconds: float):
        self.seconds, self.expired, self.response = seconds, False, None

    def watch(self, response, **kwargs):
        """requests' response hook: remember the response whose body is being read."""
        self.response = response
        if self.expired:
            self._shutdown()
        return response

    def _shutdown(self) -> None:
        if self.response is not None:
            with contextlib.suppress(Exception):  # the body may be complete and its connection released
                self.response.raw.shutdown()

    def run(self, call):
        """call()'s result, or TimeoutError once `seconds` have passed (what call raised, if it did)."""
        wait = in_thread(call, "digitlab-download")
        try:
            return wait(timeout=self.seconds)
        except TimeoutError:
            self.expired = True
            self._shutdown()
            return wait(timeout=5)  # a shut-down read ends at once, with the mirror's error


def _most_bytes(datafile: DataFile) -> int:
    """The most bytes the published .gz of `datafile` can take: its IDX contents (known from its
    shape) stored, with gzip's overhead for data it cannot compress, and a margin."""
    idx = 4 + 4 * len(datafile.shape) + math.prod(datafile.shape)
    return idx + idx // 100 + 65_536


class _Capped:
    """A file that takes at most `limit` bytes, and none once `deadline` has expired. pooch streams
    what a mirror sends for as long as it sends it, so a mirror streaming without end (no
    Content-Length) would fill the cache's disk."""

    def __init__(self, file, limit: int, deadline: _Deadline):
        self.file, self.limit, self.deadline, self.written = file, limit, deadline, 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.limit:
            raise ValueError(f"the mirror sent over {self.limit:,} bytes, more than the file can be; stopped")
        if self.deadline.expired:
            raise TimeoutError("the download's deadline passed")
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def _capped(downloader, limit: int, deadline: _Deadline):
    """pooch's `downloader`, writing through `_Capped` (pooch's downloaders take a file object)."""
    def download(url, output_file, pooch_instance, **kwargs):
        with open(output_file, "w+b") as f:
            downloader(url, _Capped(f, limit, deadline), pooch_instance, **kwargs)
    return download


def _copy_from_folder(folder: Path, datafile: DataFile, target: Path) -> None:
    source = folder / datafile.filename
    if not source.is_file():
        raise _MirrorFailed("no such file")
    try:
        with atomic_write(target) as tmp:  # checked before it replaces the cached copy
            with open(tmp, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out)
            if sha256_file(tmp) != datafile.gz_sha256:
                raise _MirrorFailed("checksum mismatch, the file is corrupt or not the expected one")
    except OSError as e:
        if getattr(e, "filename", None) != str(source):  # reading the mirror is the mirror's problem
            _check_write_error(e)
        raise _MirrorFailed(f"cannot copy: {e}") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
