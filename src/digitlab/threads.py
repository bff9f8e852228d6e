"""Waiting for a call in a thread of its own: where Python hears Ctrl-C, and with a time limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_thread(call: Callable[[], T], name: str) -> Callable[[], T]:
    """Start call() in a thread; returns the function that waits for it and gives its result (or
    raises what it raised). The wait goes a tenth of a second at a time, so that Ctrl-C is heard
    however the call waits (JAX's join of a job waits in C++, where Python sees no signal).

    A plain daemon thread, not concurrent.futures: its worker threads are not daemons, and one left
    running would turn off the command's quick exit (cli.main.run)."""
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, raised there
            outcome["error"] = e

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()

    def wait(timeout: float | None = None) -> T:
        """The call's result; TimeoutError if it is still running after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while thread.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{name} still running after {timeout:g} s")
            thread.join(0.1)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return wait
