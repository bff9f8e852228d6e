"""The `digitlab` commands that run many trainings or a server: reproduce, compare, serve.

Plain functions with Typer's options as defaults; `digitlab.cli.main` registers them on the app.
Each imports the library it calls in its body, as `digitlab.cli.main` explains.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from digitlab.cli.options import (
    escape,
    ClusterOption, CpusPerRunOption, DataDirOption, ModelOption, RetriesOption, RunsOption, ThresholdOption,
    TrustOption, choice, dataset_arg, err, out,
)
from digitlab.cli.options import names as split_names
from digitlab.errors import ServeError, WriteError
from digitlab.files import check_writable, write_text
from digitlab.models.presets import PRESETS


def reproduce(
    seeds: int = typer.Option(1, min=1, help="Seeds per preset (0..N-1)."),
    presets: Optional[str] = typer.Option(None, help="Comma-separated presets [default: all]."),
    out_dir: Path = typer.Option(Path("runs/reproduce"), "--out", help="Where the runs go."),
    data_dir: Optional[Path] = DataDirOption,
    markdown: Optional[Path] = typer.Option(None, help="Also write the table as Markdown to this file."),
    cluster: Optional[str] = ClusterOption,
    cpus_per_run: float = CpusPerRunOption,
    retries: int = RetriesOption,
) -> None:
    """Train every tutorial preset with its recipe and compare with what the tutorial reported."""
    from digitlab.lab.reproduce import markdown_table
    from digitlab.lab.reproduce import reproduce as run_all

    names = [p.strip() for p in presets.split(",")] if presets else None
    for name in names or []:
        choice("preset", PRESETS)(name)
    if markdown is not None and not markdown.parent.is_dir():  # now, not after hours of training
        raise typer.BadParameter(f"folder {markdown.parent} does not exist.", param_hint="--markdown")
    if markdown is not None and markdown.is_dir():
        raise typer.BadParameter(f"{markdown} is a folder; name a file, such as {markdown / 'reproduce.md'}.",
                                 param_hint="--markdown")
    if markdown is not None:
        check_writable(markdown)  # a device, a link, a folder that takes no file: now, not after the trainings
    table = Table(title=f"Tutorial presets, {seeds} seed(s) each")
    for col in ("preset", "recipe", "tutorial reported", "we got", "meets"):
        table.add_column(col)

    def show(r):
        out.print(f"{r.preset}: {r.summary} ({'meets' if r.meets else 'misses'} \"{r.claim}\")")
        where = "held-out" if r.metric == "val_accuracy" else "test"
        table.add_row(r.preset, r.recipe, r.claim, f"{r.summary} {where}",
                      "[green]yes[/]" if r.meets else "[red]no[/]")

    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        runner = sweep_runner(stack, cluster, out_dir, cpus_per_run, retries, data_dir)
        results = run_all(names, seeds, out_dir, data_dir, on_result=show, runner=runner, failures=failures)
    show_failures(failures)
    out.print(table)
    if markdown is not None:
        try:
            write_text(markdown, markdown_table(results) + "\n")
        except OSError as e:  # a full disk: the runs and the table printed above are kept
            raise WriteError(f"{markdown}: cannot write the table ({e.strerror or e}); the runs are kept in "
                             f"{out_dir}.") from None
        out.print(f"Wrote {escape(str(markdown))}")
    if failures:
        raise typer.Exit(1)


def sweep_runner(stack: contextlib.ExitStack, cluster: str | None, out_dir: Path, cpus_per_run: float, retries: int,
                 data_dir: Path | None):
    """With --cluster: connect (in `stack`) and return the runner of a Ray Tune sweep; else None
    (the trainings run here, one after another)."""
    if cluster is None:
        return None
    from digitlab.cluster.connect import connected
    from digitlab.cluster.sweep import runner_for

    resources = stack.enter_context(connected(cluster))  # checks the address and Ray's install first
    err.print(f"Cluster {escape(cluster)}: {resources.get('CPU', 0):g} CPUs", highlight=False)
    return runner_for(out_dir, cpus_per_run=cpus_per_run, retries=retries, data_dir=data_dir)


def show_failures(failures: list[str]) -> None:
    for failure in failures:
        err.print(f"[red]failed:[/] {escape(failure)}", highlight=False, soft_wrap=True)


def compare(
    models: str = typer.Option(..., help="Comma-separated presets, e.g. mlp,cnn,random-forest."),
    datasets: str = typer.Option("mnist", help="Comma-separated data sets, e.g. mnist,fashion-mnist."),
    out_dir: Path = typer.Option(Path("runs/compare"), "--out", help="Where the runs and the leaderboard go."),
    limit: Optional[int] = typer.Option(None, min=1, help="Train on only the first N training images."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of every run."),
    data_dir: Optional[Path] = DataDirOption,
    cluster: Optional[str] = ClusterOption,
    cpus_per_run: float = CpusPerRunOption,
    retries: int = RetriesOption,
) -> None:
    """Train each model on each data set; print a leaderboard and write it as Markdown, CSV and HTML."""
    from digitlab.lab.compare import COLUMNS, compare as run_all, row, write_leaderboard

    names = split_names(models, "preset", PRESETS)
    sets = [dataset_arg(d.strip()) for d in datasets.split(",") if d.strip()]
    if not sets:  # nothing to train: it exited 1 with nothing printed
        raise typer.BadParameter(f"name at least one data set, such as mnist; not {datasets!r}.", param_hint="--datasets")

    def show(e):
        out.print(f"{e.model} on {escape(e.dataset)}: {e.test_accuracy:.2%} test accuracy, trained in {e.train_seconds:.1f} s",
                  highlight=False)

    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        runner = sweep_runner(stack, cluster, out_dir, cpus_per_run, retries, data_dir)
        entries = run_all(names, sets, out=out_dir, data_dir=data_dir, limit=limit, seed=seed, on_result=show,
                          runner=runner, failures=failures)
    show_failures(failures)
    if not entries:
        raise typer.Exit(1)
    table = Table(title="Leaderboard")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("model", "dataset") else "right")
    for e in entries:
        table.add_row(*row(e))
    out.print(table)
    folder = Path(entries[0].run).parent.parent
    for path in write_leaderboard(entries, folder, failures):
        out.print(f"Wrote {escape(str(path))}")
    if failures:
        raise typer.Exit(1)


def serve(
    model: Optional[Path] = ModelOption,
    runs_dir: Path = RunsOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    threshold: float = ThresholdOption,
    max_body: int = typer.Option(5_000_000, min=1, help="Largest request body, in bytes (413 beyond)."),
    max_pixels: int = typer.Option(12_000_000, min=1, help="Largest image, in pixels (422 beyond)."),
    timeout: float = typer.Option(10.0, min=0.1, help="Seconds a request may take, queueing included (503 beyond)."),
    workers: int = typer.Option(2, min=1, help="Predictions run at once."),
    read_workers: int = typer.Option(1, min=1, help="Numbers read at once (/read), besides the predictions."),
    trust_model: bool = TrustOption,
) -> None:
    """The HTTP API and the drawing page: open http://HOST:PORT/ in a browser, /docs for the API."""
    import uvicorn

    from digitlab.cli.recognition import load_recognizer
    from digitlab.serve.app import Limits, create_app, host_names_answered, model_facts

    recognizer = load_recognizer(model, runs_dir, threshold, trust_model)  # says which model, on stderr
    facts = model_facts(recognizer)
    limits = Limits(max_body_bytes=max_body, max_pixels=max_pixels, timeout_s=timeout, workers=workers,
                    read_workers=read_workers)
    sock = listening_socket(host, port)  # bound here: a taken port is one line, port 0 gets its real number
    address, port = sock.getsockname()[:2]
    answered = host_names_answered(host, address)  # by the address bound: "127.1" and this machine's name are loopback
    api = create_app(recognizer, facts, limits, allowed_hosts=answered)
    if answered is None:
        err.print(f"[yellow]warning:[/] serving on {escape(host)}: other machines can reach the API, which has no "
                  "authentication; use --host 127.0.0.1 to serve this machine only.", highlight=False, soft_wrap=True)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"Serving {escape(facts.name)} ({facts.preset or 'Keras model'}, {facts.dataset}) on "
              f"http://{shown}:{port}/  (API documentation at /docs; Ctrl-C stops)", highlight=False)
    uvicorn.Server(uvicorn.Config(api, log_level="warning", timeout_keep_alive=5)).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, or a ServeError saying why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        # socket.create_server would make a socket of protocol 0, and asyncio turns Nagle's
        # algorithm off (TCP_NODELAY) only on sockets that say IPPROTO_TCP: every response body,
        # written after its headers, would then wait for the client's delayed ACK, 40 ms on Linux.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            if os.name == "posix":  # as create_server: rebind at once after a restart
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock
    except socket.gaierror:
        raise ServeError(f'--host "{host}" is not an address of this machine; use 127.0.0.1 (this machine only) '
                         "or 0.0.0.0 (every interface).") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is already in use (another digitlab serve?); stop that "
                             "server or choose another with --port.") from None
        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror or e}).") from None
