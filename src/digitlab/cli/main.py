"""The `digitlab` command: one thin command per verb, each calling one library function.

Run `digitlab --help`. User mistakes print one line on stderr: exit 2 for bad arguments, 1 for
other problems (missing files, corrupt data). Anything else is a bug and keeps its traceback.

Each command imports the library modules it calls inside its own body: training, evaluation and
figures pull in Keras, scikit-learn or matplotlib (seconds), which `digitlab --help`, `predict`
on the NumPy path or a mistyped flag must not wait for.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from digitlab.cli.options import (
    escape,
    DataDirOption, RunArgument, RunsOption, TrustOption, choice, dataset_arg, err,
    in_range, out,
)
from digitlab.cli.recognition import predict, read
from digitlab.cli.runs import compare, reproduce, serve
from digitlab.cli.console import print_diagnosis, print_evaluation

from digitlab.config import AUGMENTATIONS, ENGINES, INITS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, VALIDATION_MODES
from digitlab.data import DATASETS, get_dataset
from digitlab.data.fetch import default_cache_dir, fetch_file
from digitlab.errors import DigitlabError, Interrupted
from digitlab.runs import HISTORY_JSON, open_run
from digitlab.models import DEFAULT_PRESET, PRESETS, build_model, config_for

app = typer.Typer(
    help="Handwritten-digit recognition: train, evaluate and inspect the tutorials' networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: Rich markup would eat their "[default: ...]"
)

PLOT_KINDS = ("samples", "curves", "confusion", "predictions", "probabilities")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"digitlab {version('digitlab')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print digitlab's version and exit.")) -> None:
    pass


@app.command()
def train(
    model: str = typer.Option(DEFAULT_PRESET, "--model", "-m", help="Preset name (see `digitlab models`).",
                              callback=choice("preset", PRESETS)),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Data set name, or a path to your own data "
                                          "(class folders of images, Kaggle-style CSV, or IDX files) [default: the "
                                          "preset's: mnist+pen for reader, else mnist].", callback=dataset_arg),
    engine: str = typer.Option("keras", help="'keras', or 'numpy' for the from-scratch engine (dense presets).",
                               callback=choice("engine", ENGINES)),
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs [default: the preset's]."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Batch size [default: the preset's]."),
    optimizer: Optional[str] = typer.Option(None, help=f"One of {', '.join(OPTIMIZERS)} [default: the preset's].",
                                            callback=choice("optimizer", OPTIMIZERS)),
    learning_rate: Optional[float] = typer.Option(None, callback=in_range("--learning-rate", 0, None), help="Learning rate [default: the preset's or the optimizer's]."),
    init: Optional[str] = typer.Option(None, help="Kernel initialiser: glorot_uniform (Keras' default), he_normal, normal.",
                                       callback=choice("initializer", INITS)),
    init_std: Optional[float] = typer.Option(None, callback=in_range("--init-std", 0, None), help="Standard deviation for --init normal."),
    lr_schedule: Optional[str] = typer.Option(None, help="'constant' or 'cosine' (decay to 0 over the run) [default: the preset's].",
                                              callback=choice("learning-rate schedule", LR_SCHEDULES)),
    validation_split: Optional[float] = typer.Option(None, callback=in_range("--validation-split", 0, 1, low_closed=True),
                                                     help="Share of the training set held out for validation."),
    validation: Optional[str] = typer.Option(None, help="'split' (hold out part of the training set) or 'test' (validate on the test set).",
                                             callback=choice("validation mode", VALIDATION_MODES)),
    augment: Optional[str] = typer.Option(None, help="Distort the training images afresh each epoch: 'none', "
                                          "'affine' (rotate, scale, shift) or 'elastic' (and a smooth random "
                                          "warp) [default: the preset's].", callback=choice("augmentation", AUGMENTATIONS)),
    precision: Optional[str] = typer.Option(None, help="'float32', 'mixed_bfloat16' (layers compute in bfloat16, "
                                            "weights stay float32) or 'auto' (mixed_bfloat16 where it is faster: "
                                            "TensorFlow on a CPU with bfloat16 instructions) [default: the preset's].",
                                            callback=choice("precision", PRECISIONS)),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Random seed (weights, split, shuffling)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on only the first N training images."),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="Parent folder for the run folder."),
    data_dir: Optional[Path] = DataDirOption,
    plots: bool = typer.Option(True, help="Write the PNG figures into the run folder."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted run folder from its last checkpoint "
                                                     "(with its own configuration; other options but --no-plots and --data-dir are ignored)."),
    coordinator: Optional[str] = typer.Option(None, help="Spread a dense preset's training over processes: process "
                                              "0's HOST:PORT, given to every process (docs/cluster.md)."),
    num_processes: Optional[int] = typer.Option(None, help="With --coordinator: how many processes train."),
    process_id: Optional[int] = typer.Option(None, help="With --coordinator: this process's number, 0 to N-1 (0 "
                                             "writes the run folder)."),
) -> None:
    """Train a preset with its recipe, evaluate it on the test set, write a run folder."""
    from digitlab.models.precision import resolve_precision
    from digitlab.training.distributed import job_from_options

    job = job_from_options(coordinator, num_processes, process_id)
    if job is not None and resume is not None:
        raise typer.BadParameter("a training spread over processes has no checkpoints: --resume goes without "
                                 "--coordinator.")

    def show_result(m: dict) -> None:  # as soon as the metrics are saved: the figures follow
        out.print(f"Test loss: {m['test_loss']:.4f}   Test accuracy: {m['test_accuracy']:.4f} "
                  f"({m['test_accuracy']:.2%} of {m['test_images']:,} images)")

    if resume is not None:
        out.print(f"Resuming {escape(str(resume))}")
        from digitlab.lab.pipeline import resume as resume_run  # Keras and JAX: after the first line

        run = resume_run(resume, data_dir=data_dir, plots_enabled=plots, on_result=show_result)
        out.print(f"Run folder: {escape(str(run.path))}")
        return

    if validation == "test" and validation_split is not None:
        raise typer.BadParameter("--validation-split has no effect with --validation test; give one of them.")

    config = config_for(
        model, dataset=dataset, engine=engine, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        learning_rate=learning_rate, lr_schedule=lr_schedule, init=init, init_std=init_std, validation_split=validation_split, validation=validation,
        augment=augment, precision=precision, seed=seed, train_limit=limit, out=str(out_dir),
    )
    config = resolve_precision(config)  # the train line says what will run
    if job is not None:
        from digitlab.training.distributed import check_config

        check_config(config, job)  # before the first line: a CNN, an uneven batch...
    epochs_text = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    engine_text = " with the NumPy engine" if config.engine == "numpy" else ""
    if PRESETS[config.model].kind == "sklearn":
        out.print(f"Fitting [bold]{config.model}[/] on {escape(config.dataset)} (scikit-learn)")
    else:
        out.print(f"Training [bold]{config.model}[/]{engine_text} on {escape(config.dataset)}: {epochs_text}, batch "
                  f"{config.batch_size}, {config.optimizer}" + (f" lr {config.learning_rate:g}" if config.learning_rate else "")
                  + config.extras_note())
    from digitlab.lab.pipeline import train as train_run  # Keras and JAX (seconds): after the first line

    if job is not None:
        out.print(f"Process {job.process_id} of {job.num_processes}, meeting at {escape(job.coordinator)}: each "
                  f"trains on 1/{job.num_processes} of every batch", highlight=False)
    run = train_run(config, data_dir=data_dir, plots_enabled=plots, on_result=show_result, job=job)
    if run is None:
        out.print(f"Process {job.process_id} done: process 0 writes the run folder.", highlight=False)
        return
    out.print(f"Run folder: {escape(str(run.path))}")


@app.command()
def evaluate(
    run: Optional[Path] = RunArgument,
    dataset: Optional[str] = typer.Option(None, help="Data set or path to your own data [default: the run's].", callback=dataset_arg),
    data_dir: Optional[Path] = DataDirOption,
    runs_dir: Path = RunsOption,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    precision: str = typer.Option("auto", help="'auto' (the precision the run trained in where that is fast "
                                  "here: mixed_bfloat16 on TensorFlow on a CPU with bfloat16 instructions), "
                                  "'float32' (the saved model's exact arithmetic) or 'mixed_bfloat16'.",
                                  callback=choice("precision", PRECISIONS)),
    trust_model: bool = TrustOption,
) -> None:
    """Test loss and accuracy, confusion matrix, per-class report, most confused pairs."""
    from digitlab.evaluation.evaluate import evaluate as evaluate_run
    from digitlab.models.shipped import model_name, which_model

    ev = evaluate_run(run, dataset=dataset, data_dir=data_dir, out=runs_dir, trust=trust_model, precision=precision)
    # which run was evaluated: with several, the latest was not always the one a user had in mind (said
    # once it is evaluated, so that a model refused is one line)
    err.print(f"Model: {escape(which_model(ev.run, runs_dir))}", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(json.dumps({"model": model_name(ev.run), **ev.to_dict(), "confusion": ev.confusion.tolist()}))
        return
    print_evaluation(out, ev)


@app.command()
def models() -> None:
    """Every preset: a one-line description, its layers and its parameter count."""
    from digitlab.data.userdata import dataset_info
    from digitlab.lab.reproduce import recipe_text
    from digitlab.models.backend import select_backend
    from digitlab.models.describe import describe_model

    # Keras' NumPy backend builds every preset in a blink; on JAX each layer's initialiser is
    # compiled first (20 s for the list). Layers and counts are the same on every backend.
    select_backend("numpy")

    summary = Table(title="Presets")
    for col in ("preset", "parameters", "description", "recipe"):
        summary.add_column(col, justify="right" if col == "parameters" else "left")
    for name, preset in PRESETS.items():
        if preset.kind == "sklearn":
            summary.add_row(f"[bold]{name}[/]", "fitted", preset.description, "fits in one step, val split 0.1")
            continue
        model = build_model(name, num_classes=len(dataset_info(config_for(name).dataset).class_names))
        layers = describe_model(model)
        summary.add_row(f"[bold]{name}[/]", f"{model.count_params():,}", preset.description, recipe_text(name))
        summary.add_row("", "", "[dim]" + " -> ".join(d for d, _, _ in layers) + "[/]", "")
    out.print(summary)


@app.command()
def fetch(
    dataset: str = typer.Argument("mnist", help="Data set name.", callback=choice("data set", DATASETS)),
    force: bool = typer.Option(False, help="Download again even if the cache holds a good copy."),
) -> None:
    """Download a data set's files into the cache (checksums verified)."""
    from digitlab.data.load import DATA_ENV, checked_array, find_local

    ds = get_dataset(dataset)
    local = {f.filename: find_local(ds, f, None) for f in ds.files} if not force else {}
    for f in ds.files:  # a file $DIGITLAB_DATA holds is checked there, not downloaded (it went to the internet)
        if local.get(f.filename) is not None:
            checked_array(ds, f, local[f.filename])
            out.print(f"{escape(str(local[f.filename]))}  [green]ok[/] (sha256 {f.sha256[:12]}… of its content)")
            continue
        path = fetch_file(ds, f, force=force)
        out.print(f"{escape(str(path))}  [green]ok[/] (sha256 {f.gz_sha256[:12]}…)")
    if all(local.get(f.filename) for f in ds.files):
        out.print(f"Nothing downloaded: ${DATA_ENV} holds {ds.name}'s files, and every command reads them from there.",
                  highlight=False)
    else:
        out.print(f"Cache: {escape(str(default_cache_dir()))}")


@app.command()
def plot(
    kind: str = typer.Argument(..., help=f"One of: {', '.join(PLOT_KINDS)}.", callback=choice("plot kind", PLOT_KINDS)),
    run: Optional[Path] = RunArgument,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG file to write [default: KIND.png]."),
    dataset: Optional[str] = typer.Option(None, help="Data set or path [default: the run's, or mnist].", callback=dataset_arg),
    index: int = typer.Option(0, min=0, help="Test image for `probabilities`."),
    count: int = typer.Option(25, min=1, max=100, help="Images in a grid."),
    mistakes: bool = typer.Option(False, help="`predictions`: show only misclassified images."),
    augment: Optional[str] = typer.Option(None, help="`samples`: draw them distorted as training does ('none', 'affine', "
                                          "'elastic') [default: as RUN was trained; 'none' without RUN].",
                                          callback=choice("augmentation", AUGMENTATIONS)),
    data_dir: Optional[Path] = DataDirOption,
    runs_dir: Path = RunsOption,
) -> None:
    """Draw one figure: sample digits, training curves, confusion heat map, predictions, probabilities."""
    from digitlab.reports.figures import make_figure
    from digitlab.reports.plots import save_figure

    fig = make_figure(kind, run, dataset=dataset, index=index, count=count, mistakes=mistakes, augment=augment,
                      data_dir=data_dir, runs_dir=runs_dir)
    output = output or Path(f"{kind}.png")
    if not output.parent.is_dir():
        raise typer.BadParameter(f"folder {output.parent} does not exist.", param_hint="--output")
    try:
        save_figure(fig, output)
    except ValueError as e:  # matplotlib: unsupported file extension
        raise typer.BadParameter(str(e), param_hint="--output") from None
    out.print(f"Wrote {escape(str(output))}")


@app.command()
def diagnose(
    run: Optional[Path] = RunArgument,
    as_json: bool = typer.Option(False, "--json", help="Print the diagnosis as JSON."),
    plot_file: Optional[Path] = typer.Option(None, "--plot", help="Write the per-layer gradient/update plot (PNG)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N training images."),
    data_dir: Optional[Path] = DataDirOption,
    runs_dir: Path = RunsOption,
) -> None:
    """Dead ReLUs, saturated units and vanishing gradients, per hidden layer, with verdicts."""
    from digitlab.evaluation.diagnose import diagnose as run_diagnosis

    result = run_diagnosis(run, data_dir=data_dir, out=runs_dir, limit=limit)
    if plot_file is not None:
        from digitlab.reports.plots import plot_layer_health, save_figure

        opened = open_run(run, runs_dir)
        history = opened.read(HISTORY_JSON) or {}
        title = f"Layer health ({opened.folder.name if opened.folder else run})"
        save_figure(plot_layer_health(history, title=title), plot_file)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    print_diagnosis(out, result)
    if plot_file is not None:
        out.print(f"Wrote {escape(str(plot_file))}")


for command in (predict, read, reproduce, compare, serve):
    app.command()(command)


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning) -> None:
    """digitlab's own warnings as one line on stderr, like its errors; other libraries' as Python shows them."""
    if issubclass(category, UserWarning) and "digitlab" in Path(filename).parts:
        err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default(message, category, filename, lineno, file, line)


def main() -> None:
    """Entry point: runs the app, turning digitlab's own errors into one line and exit code 1."""
    warnings.showwarning = _show_warning
    try:
        app()
    except DigitlabError as e:
        first, *more = getattr(e, "lines", ()) or (str(e),)  # each line escaped: no newline of a name gets out
        err.print(f"[red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)
        for line in more:
            err.print(escape(line), highlight=False, soft_wrap=True)
        sys.exit(130 if isinstance(e, Interrupted) else 1)


def run() -> None:
    """The `digitlab` command (and `python -m digitlab`): main(), then a quick exit.

    Python's own shutdown after Keras and JAX, tearing down thousands of modules and XLA's
    runtime, took 0.7 s of every command that had loaded them (measured on a 2-core VM, 2026-12-05:
    0.68-0.82 s, against 0.03 s this way; BENCHMARKS.md, "Whole runs"). Everything a command
    writes is closed by then (run files are written atomically); the exit handlers still run
    (`atexit`: logging, temporary folders), the output is flushed, and the process ends with the
    exit code main() gave. When a thread that Python would wait for is still running (none of
    digitlab's), or neither JAX nor TensorFlow was loaded, the exit is Python's usual one.
    Tests call main() itself, in their own process."""
    import atexit
    import os
    import threading

    code: int | str | None = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    waited_for = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if waited_for or not ({"jax", "tensorflow"} & set(sys.modules)):
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers Python's exit would run, then none of the teardown
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)
