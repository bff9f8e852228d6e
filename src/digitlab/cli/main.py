"""The `digitlab` command: one thin command per verb, each calling one library function.

Run `digitlab --help`. User mistakes print one line on stderr: exit 2 for bad arguments, 1 for
other problems (missing files, corrupt data). Anything else is a bug and keeps its traceback.

Each command imports the library modules it calls inside its own body: training, evaluation and
figures pull in Keras, scikit-learn or matplotlib (seconds), which `digitlab --help`, `predict`
on the NumPy path or a mistyped flag must not wait for.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from digitlab.cli.options import (
    DataDirOption, ModelOption, RunArgument, RunsOption, ThresholdOption, TrustOption, choice, dataset_arg, err,
    in_range, out,
)
from digitlab.cli.runs import compare, reproduce, serve
from digitlab.cli.console import prediction_line, print_diagnosis, print_evaluation, progress

from digitlab.config import AUGMENTATIONS, ENGINES, INITS, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, VALIDATION_MODES
from digitlab.data import DATASETS, get_dataset
from digitlab.data.fetch import default_cache_dir, fetch_file
from digitlab.errors import DigitlabError, Interrupted, WriteError
from digitlab.files import atomic_write
from digitlab.runs import HISTORY_JSON, open_run
from digitlab.models import DEFAULT_PRESET, PRESETS, build_model, config_for

app = typer.Typer(
    help="Handwritten-digit recognition: train, evaluate and inspect the tutorials' networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

PLOT_KINDS = ("samples", "curves", "confusion", "predictions", "probabilities")


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
                                                     "(with its own configuration; other options are ignored)."),
) -> None:
    """Train a preset with its recipe, evaluate it on the test set, write a run folder."""
    from digitlab.lab.pipeline import resume as resume_run
    from digitlab.models.precision import resolve_precision
    from digitlab.lab.pipeline import train as train_run

    if resume is not None:
        out.print(f"Resuming {escape(str(resume))}")
        run = resume_run(resume, data_dir=data_dir, plots_enabled=plots)
        out.print(f"Test loss: {run.metrics['test_loss']:.4f}   Test accuracy: {run.metrics['test_accuracy']:.4f}")
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
    epochs_text = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    engine_text = " with the NumPy engine" if config.engine == "numpy" else ""
    if PRESETS[config.model].kind == "sklearn":
        out.print(f"Fitting [bold]{config.model}[/] on {config.dataset} (scikit-learn)")
    else:
        out.print(f"Training [bold]{config.model}[/]{engine_text} on {config.dataset}: {epochs_text}, batch "
                  f"{config.batch_size}, {config.optimizer}" + (f" lr {config.learning_rate:g}" if config.learning_rate else "")
                  + config.extras_note())
    run = train_run(config, data_dir=data_dir, plots_enabled=plots)
    m = run.metrics
    out.print(f"Test loss: {m['test_loss']:.4f}   Test accuracy: {m['test_accuracy']:.4f} "
              f"({m['test_accuracy']:.2%} of {m['test_images']:,} images)")
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

    ev = evaluate_run(run, dataset=dataset, data_dir=data_dir, out=runs_dir, trust=trust_model, precision=precision)
    if as_json:
        out.print_json(json.dumps({**ev.to_dict(), "confusion": ev.confusion.tolist()}))
        return
    print_evaluation(out, ev)


@app.command()
def models() -> None:
    """Every preset: a one-line description, its layers and its parameter count."""
    from digitlab.models.describe import describe_model
    from digitlab.lab.reproduce import recipe_text

    summary = Table(title="Presets")
    for col in ("preset", "parameters", "description", "recipe"):
        summary.add_column(col, justify="right" if col == "parameters" else "left")
    for name, preset in PRESETS.items():
        if preset.kind == "sklearn":
            summary.add_row(f"[bold]{name}[/]", "fitted", preset.description, "fits in one step, val split 0.1")
            continue
        model = build_model(name)
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
    ds = get_dataset(dataset)
    for f in ds.files:
        path = fetch_file(ds, f, force=force)
        out.print(f"{escape(str(path))}  [green]ok[/] (sha256 {f.gz_sha256[:12]}…)")
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
def predict(
    files: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    model: Optional[Path] = ModelOption,
    runs_dir: Path = RunsOption,
    threshold: float = ThresholdOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image (JSON Lines)."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header row."),
    save_prepared: Optional[Path] = typer.Option(None, help="Write the 28x28 image the model saw for each file here."),
    trust_model: bool = TrustOption,
) -> None:
    """The digit in each image, its probability and the top 3. Exit 1 if any image failed."""
    from digitlab.recognize import Recognizer, expand

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv.")
    if save_prepared is not None:
        try:
            save_prepared.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise typer.BadParameter(f"cannot make the folder {save_prepared} ({e.strerror or e}).",
                                     param_hint="--save-prepared") from None
    recognizer = Recognizer.load(model, runs=runs_dir, threshold=threshold, trust=trust_model)
    total = sum(1 for _ in expand(files))
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(["source", "status", "digit", "probability", "top1", "p1", "top2", "p2", "top3", "p3", "message"])
    failed = 0
    with progress(err, total) as advance:
        for i, pred in enumerate(recognizer.predict_iter(expand(files), keep_prepared=save_prepared is not None)):
            advance()
            failed += pred.status == "error"
            if save_prepared is not None and pred.prepared is not None:
                from PIL import Image

                name = f"{i:06d}-{Path(pred.source).stem[:100]}.png"  # a file system takes 255 bytes a name
                save_image(Image.fromarray(np.uint8(np.rint(pred.prepared * 255))), save_prepared / name)
            if as_json:
                print(json.dumps(pred.to_dict()), flush=False)
            elif writer:
                tops = [v for c, p in pred.top for v in (c, f"{p:.6f}")] + [""] * (6 - 2 * len(pred.top))
                writer.writerow([pred.source, pred.status, pred.digit or "",
                                 "" if pred.probability is None else f"{pred.probability:.6f}", *tops, pred.message])
            else:
                out.print(prediction_line(pred), highlight=False)
    if failed:
        err.print(f"{failed} of {total} image(s) could not be read; see the messages above.", highlight=False)
        raise typer.Exit(1)


@app.command()
def read(
    files: list[Path] = typer.Argument(..., help="Images of handwritten numbers, or folders of them (searched recursively)."),
    model: Optional[Path] = ModelOption,
    runs_dir: Path = RunsOption,
    threshold: float = ThresholdOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image (JSON Lines)."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header row, one row per image."),
    save_boxes: Optional[Path] = typer.Option(
        None, help="Write a copy of each image with its digit boxes drawn: an image file name for one image, "
                   "or a folder."),
    trust_model: bool = TrustOption,
) -> None:
    """Read handwritten numbers: "90210", with a probability per digit and the boxes found. Exit 1 if any image failed."""
    from digitlab.recognize import Recognizer, draw_boxes, expand

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv.")
    total = sum(1 for _ in expand(files))
    boxes_for = _boxes_destination(save_boxes, total)
    recognizer = Recognizer.load(model, runs=runs_dir, threshold=threshold, trust=trust_model)
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(["source", "status", "text", "probabilities", "boxes", "message"])
    failed = 0
    with progress(err, total) as advance:
        paths = list(expand(files)) if boxes_for is not None else None  # draw_boxes opens each again
        for i, reading in enumerate(recognizer.read_iter(expand(files))):
            advance()
            failed += reading.status == "error"
            if boxes_for is not None and reading.status == "ok":
                save_image(draw_boxes(paths[i], reading), boxes_for(i, paths[i]))
            if as_json:
                print(json.dumps(reading.to_dict()), flush=False)
            elif writer:
                writer.writerow([reading.source, reading.status, reading.text,
                                 " ".join(f"{d.probability:.6f}" for d in reading.digits),
                                 " ".join(":".join(map(str, b)) for b in reading.boxes), reading.message])
            elif reading.status == "error":
                out.print(f"[red]error:[/] {escape(reading.message)}", highlight=False)
            else:
                out.print(f"[bold]{escape(reading.text)}[/]" + ("" if total == 1 else f"  {escape(reading.source)}"),
                          highlight=False)
                for d, (top, left, bottom, right) in zip(reading.digits, reading.boxes):
                    out.print(f"  {escape(d.digit or '?')}  {d.probability:.1%}  box x {left}-{right}, y {top}-{bottom}",
                              highlight=False)
    if save_boxes is not None and failed < total and not (as_json or writer):
        out.print(f"Wrote {escape(str(save_boxes))}", highlight=False)
    if failed:
        err.print(f"{failed} of {total} image(s) could not be read; see the messages above.", highlight=False)
        raise typer.Exit(1)


def _boxes_destination(save_boxes: Path | None, total: int):
    """Where `read --save-boxes` writes image i's boxes: the file named, for one image, or a file in
    the folder named (made if missing). Checked before any model is loaded."""
    if save_boxes is None:
        return None
    if save_boxes.suffix and not save_boxes.is_dir():
        if image_format(save_boxes) is None:
            raise typer.BadParameter(f"{save_boxes}: not an image file name; name it .png or .jpg, or give a folder.",
                                     param_hint="--save-boxes")
        if total != 1:
            raise typer.BadParameter(f"{save_boxes} names one file, for {total} images; give a folder.",
                                     param_hint="--save-boxes")
        if not save_boxes.parent.is_dir():
            raise typer.BadParameter(f"folder {save_boxes.parent} does not exist.", param_hint="--save-boxes")
        return lambda i, path: save_boxes
    try:
        save_boxes.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise typer.BadParameter(f"cannot make the folder {save_boxes} ({e.strerror or e}).",
                                 param_hint="--save-boxes") from None
    return lambda i, path: save_boxes / f"{i:06d}-{path.stem[:100]}.png"  # a file system takes 255 bytes a name


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


for command in (reproduce, compare, serve):
    app.command()(command)


def image_format(path: Path) -> str | None:
    """The Pillow format a file name asks for (".png" -> "PNG"), None for a name Pillow cannot write."""
    from PIL import Image

    return Image.registered_extensions().get(path.suffix.lower()) if path.suffix else None


def save_image(image, path: Path) -> None:
    """Save a Pillow image atomically, in the format its name says; one line if it cannot be written."""
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=image_format(path) or "PNG")
    except OSError as e:
        raise WriteError(f"{path}: cannot write the image ({e.strerror or e}); check that the folder exists, is "
                         "writable and has space.") from None


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
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(130 if isinstance(e, Interrupted) else 1)
