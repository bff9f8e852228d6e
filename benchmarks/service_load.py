"""Load on the HTTP API over loopback: N requests, C at a time; errors and latency percentiles.

    python benchmarks/service_load.py --model runs/<run>            # starts `digitlab serve` itself
    python benchmarks/service_load.py --url http://127.0.0.1:8000   # a server already running

Each request posts one real MNIST test digit: as 28 x 28 pixels in JSON (`--kind pixels`), or as
a 200 x 200 PNG of dark ink on white paper uploaded as multipart (`--kind png`), which also
exercises decoding and MNIST-style preparation. Prints one JSON object per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


def payloads(kind: str, count: int, data_dir: str | None) -> tuple[list[dict], list[int]]:
    from PIL import Image

    from digitlab import load_dataset

    _, (x_test, y_test) = load_dataset("mnist", data_dir=data_dir)
    out = []
    for i in range(count):
        digit = x_test[i % len(x_test)]
        if kind == "pixels":
            out.append({"json": {"pixels": digit.tolist()}})
        else:
            buf = io.BytesIO()
            Image.fromarray(255 - digit).resize((200, 200)).save(buf, "PNG")
            out.append({"files": {"file": (f"{i}.png", buf.getvalue(), "image/png")}})
    return out, [int(y_test[i % len(y_test)]) for i in range(count)]


async def hammer(url: str, kind: str, requests: list[dict], concurrency: int) -> dict:
    path = "/api/v1/predict" if kind == "pixels" else "/api/v1/predict/upload"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []  # what went wrong with each request that got no answer (status 0)
    answers: list[str | None] = [None] * len(requests)
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker():
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                try:
                    response = await client.post(path, **requests[i])
                    code = response.status_code
                    if code == 200:
                        answers[i] = response.json()["digit"]
                except httpx.HTTPError as e:
                    code = 0  # connection refused, reset, timed out
                    failures.append(f"{type(e).__name__}: {e}"[:200])
                latencies.append(time.perf_counter() - started)
                statuses[code] = statuses.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "kind": kind, "requests": len(requests), "concurrency": concurrency,
        "errors": sum(n for code, n in statuses.items() if code != 200), "statuses": statuses,
        "failures": failures,
        "requests_per_s": round(len(requests) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
        "answers": answers,
    }


def start_server(model: str, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "digitlab"
    server = subprocess.Popen([str(exe), "serve", "--model", model, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_up(f"http://127.0.0.1:{port}", server)
    return server


def wait_until_up(url: str, server: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}: {server.stderr.read()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not answer within {timeout:g} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--url of a running server, or --model to serve for the benchmark: one of them."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server")
    where.add_argument("--model", help="a run folder or .keras file to serve for the benchmark")


@contextlib.contextmanager
def serving(url: str | None, model: str | None):
    """The URL to load: `url` as given, or that of a `digitlab serve --model MODEL` started on a
    free port for the block and stopped after it."""
    if url is not None:
        yield url
        return
    port = free_port()
    server = start_server(model, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_arguments(parser)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kinds", default="pixels,png")
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    args = parser.parse_args()
    with serving(args.url, args.model) as url:
        for kind in args.kinds.split(","):
            requests, labels = payloads(kind, args.requests, args.data_dir)
            result = asyncio.run(hammer(url, kind, requests, args.concurrency))
            answers = result.pop("answers")
            result["accuracy"] = round(float(np.mean([a == str(y) for a, y in zip(answers, labels)])), 4)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
