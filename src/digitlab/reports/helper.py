"""A helper process for a run's figures: matplotlib imported while the run trains, the drawing after.

After a default run's result, importing matplotlib (0.45 s) and drawing the figures and the report
(1 s) were the last second and a half a user waited, on one core of two (BENCHMARKS.md, "Whole
runs"). The helper is a fresh interpreter started with the run: its imports overlap the data and
Keras' import, which leave a core free, and when the results are saved it draws them while this
process has nothing else to do.

    >>> with helper.started(2) as helpers:      # two processes importing matplotlib
    ...     ...                                 # train
    ...     helper.run_all(helpers, draw, [args1, args2])  # draw(*args1), draw(*args2), one in each

Hand-written on `subprocess` and `pickle` rather than `concurrent.futures.ProcessPoolExecutor` or
`multiprocessing`: an interrupted run must stop the drawing at once (the executor can terminate
its workers only from Python 3.14), and a spawned multiprocessing child re-runs the caller's
`__main__` (the whole CLI) first; the helper must also not get the terminal's Ctrl-C, which its
own session keeps away.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WARM = ("digitlab.reports.run_figures", "digitlab.reports.plots")  # what drawing a run imports (matplotlib)
# The warm-up's priority: behind the run (a tenth of a core's share against it), but not so far
# behind that a machine busy with other work (a test suite, a sweep) starves it: the drawing
# waits for it, and an unprivileged process cannot raise a priority again.
WARM_NICENESS = 10


# The helper's start: everything it imports (digitlab's package too, 0.2 s) is imported in a thread
# at a low priority (`_warm`), while the first thread waits for work at the normal priority.
BOOT = """
import sys
if sys.path and sys.path[0] == "":  # not the working folder (a threading.py there is none of ours)
    del sys.path[0]
import os, threading
if sys.version_info < (3, 11):  # (3.11 starts it in its own group: Popen's process_group)
    os.setpgid(0, 0)
if os.path.realpath(sys.argv[1]) not in {os.path.realpath(p) for p in sys.path}:
    sys.path.insert(0, sys.argv[1])  # the caller's digitlab is a source tree it put on its own sys.path
def warm():
    from digitlab.reports import helper
    helper._warm(sys.argv[2:])
warming = threading.Thread(target=warm, daemon=True)
warming.start()
sys.stdin.buffer.peek(1)  # the first request, or end-of-file
warming.join()
from digitlab.reports import helper
helper._serve()
"""


class _RemoteTraceback(Exception):
    """Where an exception raised in the helper came from: its traceback there, as text."""


@dataclass
class Helper:
    """A running helper process: pickled (function, arguments) into its stdin, (ok, value,
    traceback) out of its stdout."""

    process: subprocess.Popen


def start(warm: tuple[str, ...] = WARM) -> Helper | None:
    """A helper process importing `warm` now; None when one cannot be started (the caller then
    does the work itself)."""
    # This digitlab, wherever it was imported from: an installed package, or a source tree the
    # caller put on sys.path (BOOT puts it first only then, never site-packages before the stdlib).
    source = str(Path(os.path.abspath(__file__)).parents[2])
    try:
        # Its own process group, so that the terminal's Ctrl-C reaches only the run, which stops it;
        # not its own session, which Linux would schedule as a group of its own ("autogroup"),
        # beside the run instead of behind it (`_warm`).
        group = {"process_group": 0} if os.name != "nt" and sys.version_info >= (3, 11) else {}
        process = subprocess.Popen([sys.executable, "-c", BOOT, source, *warm],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, **group)
    except (OSError, ValueError, TypeError):  # no processes left, or no interpreter to start (embedded Python)
        return None
    return Helper(process)


def run_all(helpers: list[Helper], fn: Callable[..., Any], arglists: list[tuple]) -> list[Any]:
    """`fn(*args)` for each of `arglists`, shared round-robin among the helpers and run at the same
    time; the results in order, and the first exception raised here. A call whose helper is gone
    (killed, out of memory), or all of them when there are no helpers, runs here instead.
    `fn` must be importable by name."""
    results = []
    width = max(len(helpers), 1)
    for first in range(0, len(arglists), width):
        # One call at a time in each helper: a second request written while it writes a long reply
        # to the first could leave both pipes full, each process waiting for the other.
        batch = arglists[first:first + width]
        sent = [_send(h, fn, args) for h, args in zip(helpers, batch)] if helpers else [None] * len(batch)
        replies = [_receive(helper) if helper is not None else None for helper in sent]  # each read, even after an error
        for reply, args in zip(replies, batch):
            if reply is None:
                results.append(fn(*args))
                continue
            ok, value, where = reply
            if not ok:
                raise value from _RemoteTraceback(where)
            results.append(value)
    return results


def _send(helper: Helper, fn: Callable[..., Any], args: tuple) -> Helper | None:
    if helper.process.poll() is not None:
        return None
    try:
        pickle.dump((fn, args), helper.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        helper.process.stdin.flush()
    except OSError:  # it has gone
        return None
    return helper


def _receive(helper: Helper) -> tuple | None:
    """The helper's next reply, or None when it has gone (or said something that cannot be read:
    it is stopped, its stream being out of step)."""
    try:
        return pickle.load(helper.process.stdout)
    except (OSError, EOFError):
        return None
    except Exception:  # noqa: BLE001 - a reply that does not unpickle
        stop(helper, now=True)
        return None


def stop(helper: Helper, now: bool = False) -> None:
    """End a helper: when its work is done (`now` False) it exits at once; `now` stops a drawing
    under way (an interrupted run), whose atomic writes then remove their temporary files."""
    process = helper.process
    if now and process.poll() is None:
        process.terminate()  # SIGTERM: SystemExit in the helper, so `atomic_write` cleans up
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            stream.close()  # the helper reads end-of-file: it exits
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def started(count: int = 1, warm: tuple[str, ...] = WARM) -> Iterator[list[Helper]]:
    """`count` helpers for the duration of a block (as many as could be started, maybe none),
    stopped when it ends; at once when the block raises."""
    helpers = [h for h in (start(warm) for _ in range(count)) if h is not None]
    try:
        yield helpers
    except BaseException:
        for h in helpers:
            stop(h, now=True)
        raise
    for h in helpers:
        stop(h)


def _serve() -> None:
    """The helper's side: run each (function, arguments) read from stdin until end-of-file.
    Replies go through a private copy of stdout; what the work prints goes to stderr."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # an exception, so `finally` and atomic writes clean up
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    while True:
        try:
            fn, args = pickle.load(requests)
        except EOFError:  # the run is done with the helper, or its process has gone
            break
        try:
            reply = (True, fn(*args), "")
        except Exception as e:  # noqa: BLE001 - raised again in the run's process
            reply = (False, e, traceback.format_exc())
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)  # some exceptions pickle but do not unpickle (an __init__ of two arguments)
        except Exception:  # noqa: BLE001 - a result or exception that does not travel: say what it was
            data = pickle.dumps((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}"), reply[2]))
        try:
            replies.write(data)
            replies.flush()
        except OSError:  # the run's process has gone
            break
    with contextlib.suppress(OSError):
        replies.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is written and closed: none of the interpreter's teardown (0.1 s)


def _warm(modules: list[str]) -> None:
    """Import `modules` and draw once, in a thread (`BOOT`) at a low priority (Linux gives each
    thread its own): the run's process, on the same cores, goes first; the requests are served
    at the normal priority. A run's data and Keras' import leave a core free for this (about 1.1 of 2
    cores busy in the first 3 s of a default run), its epochs do not (1.9)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARM_NICENESS)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - it fails again in the work, where it is reported
            return
    _first_draw()


def _first_draw() -> None:
    """Render a little text once while the run trains: the first drawing loads the fonts (0.1 s)."""
    if "matplotlib" not in sys.modules:
        return
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0")
    with contextlib.suppress(Exception):
        fig.savefig(io.BytesIO(), format="png")

