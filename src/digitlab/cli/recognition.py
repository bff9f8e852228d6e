"""The `digitlab` commands that recognise images: predict (one digit per image) and read (a number).

Plain functions with Typer's options as defaults; `digitlab.cli.main` registers them on the app.
Each imports the library it calls in its body, as `digitlab.cli.main` explains.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from digitlab.cli.console import prediction_line, progress
from digitlab.cli.options import (
    escape,
    ClusterOutOption, CsvOption, JsonLinesOption, ModelOption, RecognizeClusterOption, RunsOption, ThresholdOption,
    TrustOption, err, out,
)
from digitlab.errors import ClusterError
from digitlab.files import atomic_write, shortened, utf8_name, write_errors


def predict(
    files: list[str] = typer.Argument(..., help="Image files or folders (searched recursively); - for one image on "
                                      "standard input."),
    model: Optional[Path] = ModelOption,
    runs_dir: Path = RunsOption,
    threshold: float = ThresholdOption,
    as_json: bool = JsonLinesOption,
    as_csv: bool = CsvOption,
    save_prepared: Optional[Path] = typer.Option(None, help="Write the 28x28 image the model saw for each file here."),
    workers: int = typer.Option(0, min=0, max=64, help="Processes that decode and prepare the images of a folder "
                                "(0: this machine's cores, at most 4; 1: none)."),
    cluster: Optional[str] = RecognizeClusterOption,
    out_file: Optional[Path] = ClusterOutOption,
    trust_model: bool = TrustOption,
) -> None:
    """The digit in each image, its probability and the top 3. Exit 1 if any image failed."""
    from digitlab.images.batch import default_workers
    from digitlab.images.folders import expand
    from digitlab.recognize import CSV_COLUMNS

    _one_format(as_json, as_csv)
    if cluster is not None or out_file is not None:
        return _on_cluster("predict", files, cluster, out_file, as_json or as_csv or save_prepared is not None,
                           lambda: load_recognizer(model, runs_dir, threshold, trust_model))
    piped, files = _stdin_image(files), [Path(f) for f in files]  # Path("./-") would be "-"
    skip = _output_folder(save_prepared, files, "--save-prepared")
    recognizer = load_recognizer(model, runs_dir, threshold, trust_model)
    if save_prepared is not None:
        _make_folder(save_prepared, "--save-prepared")  # only once the model loaded: a failed run leaves nothing
    images = (lambda: [piped]) if piped is not None else (lambda: expand(files, skip))
    total = sum(1 for _ in images())
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    failed = 0
    with progress(err, total) as advance:
        for i, pred in enumerate(recognizer.predict_iter(images(), keep_prepared=save_prepared is not None,
                                                         workers=workers or default_workers())):
            advance()
            failed += pred.status == "error"
            if save_prepared is not None and pred.prepared is not None:
                from PIL import Image

                save_image(Image.fromarray(np.uint8(np.rint(pred.prepared * 255))),
                           save_prepared / _numbered_name(i, Path("stdin" if piped is not None else pred.source)))
            if as_json:
                print(json.dumps(_utf8({**pred.to_dict(), "model": recognizer.name})), flush=False)
            elif writer:
                writer.writerow(_utf8(pred.csv_row()))
            else:
                out.print(prediction_line(pred), highlight=False)
    _exit_if_failed(failed, total)


def read(
    files: list[str] = typer.Argument(..., help="Images of handwritten numbers, or folders of them (searched "
                                      "recursively); - for one on standard input."),
    model: Optional[Path] = ModelOption,
    runs_dir: Path = RunsOption,
    threshold: float = ThresholdOption,
    as_json: bool = JsonLinesOption,
    as_csv: bool = CsvOption,
    save_boxes: Optional[Path] = typer.Option(
        None, help="Write a copy of each image with its digit boxes drawn: an image file name for one image, "
                   "or a folder."),
    cluster: Optional[str] = RecognizeClusterOption,
    out_file: Optional[Path] = ClusterOutOption,
    trust_model: bool = TrustOption,
) -> None:
    """Read handwritten numbers: "90210", with a probability per digit and the boxes found. Exit 1 if any image failed."""
    from digitlab.images.folders import expand
    from digitlab.recognize import READ_COLUMNS

    _one_format(as_json, as_csv)
    if cluster is not None or out_file is not None:
        return _on_cluster("read", files, cluster, out_file, as_json or as_csv or save_boxes is not None,
                           lambda: load_recognizer(model, runs_dir, threshold, trust_model))
    as_folder = save_boxes is not None and (not save_boxes.suffix or save_boxes.is_dir())
    piped, files = _stdin_image(files), [Path(f) for f in files]  # Path("./-") would be "-"
    skip = _output_folder(save_boxes if as_folder else None, files, "--save-boxes")
    paths = [piped] if piped is not None else list(expand(files, skip))  # once: draw_boxes opens each again
    boxes_for = _boxes_destination(save_boxes, paths)
    recognizer = load_recognizer(model, runs_dir, threshold, trust_model)
    if as_folder:
        _make_folder(save_boxes, "--save-boxes")  # only once the model loaded: a failed run leaves nothing
    total = len(paths)
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(READ_COLUMNS)
    failed = 0
    with progress(err, total) as advance:
        for i, reading in enumerate(recognizer.read_iter(paths)):
            advance()
            failed += reading.status == "error"
            if boxes_for is not None and reading.status == "ok":
                if paths[i] is piped:
                    piped.seek(0)  # read once already
                save_image(draw_boxes(paths[i], reading), boxes_for(i, Path("stdin") if paths[i] is piped else paths[i]))
            if as_json:
                print(json.dumps(_utf8({**reading.to_dict(), "model": recognizer.name})), flush=False)
            elif writer:
                writer.writerow(_utf8(reading.csv_row()))
            elif reading.status == "error":
                out.print(f"[red]error:[/] {escape(reading.message)}", highlight=False)
            else:
                out.print(f"[bold]{escape(reading.text)}[/]" + ("" if total == 1 else f"  {escape(reading.source)}"),
                          highlight=False)
                for d, (top, left, bottom, right) in zip(reading.digits, reading.boxes):
                    out.print(f"  {escape(d.digit or '?')}  {d.probability:.1%}  box x {left}-{right}, y {top}-{bottom}"
                              f"{_why_unsure(d)}", highlight=False)
    if save_boxes is not None and failed < total and not (as_json or writer):
        out.print(f"Wrote {escape(str(save_boxes))}", highlight=False)
    _exit_if_failed(failed, total)


def load_recognizer(model: Path | None, runs_dir: Path, threshold: float, trust: bool):
    """The Recognizer, and one line on standard error saying which model answers and how to choose another."""
    from digitlab.recognize import Recognizer
    from digitlab.models.shipped import which_model

    recognizer = Recognizer.load(model, runs=runs_dir, threshold=threshold, trust=trust)
    err.print(f"Model: {escape(which_model(recognizer.run, runs_dir))}", highlight=False, soft_wrap=True)
    return recognizer


def _boxes_destination(save_boxes: Path | None, paths: list[Path]):
    """Where `read --save-boxes` writes image i's boxes: the file named, for one image, or a file in
    the folder named (made once the model loaded). Checked before any model is loaded."""
    if save_boxes is None:
        return None
    if save_boxes.suffix and not save_boxes.is_dir():
        if image_format(save_boxes) is None:
            raise typer.BadParameter(f"{save_boxes}: not an image file name digitlab writes; name it "
                                     f"{', '.join(sorted(OUTPUT_FORMATS))}, or give a folder.", param_hint="--save-boxes")
        if len(paths) != 1:
            raise typer.BadParameter(f"{save_boxes} names one file, for {len(paths)} images; give a folder.",
                                     param_hint="--save-boxes")
        if not save_boxes.parent.is_dir():
            raise typer.BadParameter(f"folder {save_boxes.parent} does not exist.", param_hint="--save-boxes")
        if save_boxes.exists() and (_is_stdin(save_boxes) if isinstance(paths[0], io.IOBase)
                                    else os.path.exists(paths[0]) and save_boxes.samefile(paths[0])):
            raise typer.BadParameter(f"{save_boxes} is the image read; name another file, so that it is kept.",
                                     param_hint="--save-boxes")
        return lambda i, path: save_boxes
    return lambda i, path: save_boxes / _numbered_name(i, path)


def _is_stdin(path: Path) -> bool:
    """Whether standard input is the file at `path` (`read - --save-boxes w.png < w.png` replaced the image)."""
    try:
        there, piped = path.stat(), os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (there.st_dev, there.st_ino) == (piped.st_dev, piped.st_ino)


def _piped(files: list[str]) -> bool:
    return "-" in files


def _stdin_image(files: list[str]) -> io.BytesIO | None:
    """`-`, given alone: the image piped into standard input, as a file named "<stdin>" (read whole
    first, since a pipe is read once and `read --save-boxes` draws on the image again). A file
    named "-" is `./-`, as for other Unix tools."""
    from digitlab.images.read import MAX_FILE_BYTES

    if not _piped(files):
        return None
    if len(files) > 1:
        raise typer.BadParameter("'-' (an image on standard input) goes alone; name the other files in a command of "
                                 "their own, or a file called '-' as ./-.", param_hint="FILES")
    if sys.stdin is None:
        raise typer.BadParameter("'-' reads an image piped into standard input, which is closed: "
                                 "digitlab ... - < digit.png, or name the file.", param_hint="FILES")
    if sys.stdin.isatty():
        raise typer.BadParameter("'-' reads an image piped into standard input, and this is a terminal: "
                                 "digitlab ... - < digit.png, or name the file.", param_hint="FILES")
    try:
        image = io.BytesIO(sys.stdin.buffer.read(MAX_FILE_BYTES + 1))  # open_image says when it is too large, or empty
    except OSError as e:  # opened for writing only (0>file), or a device that fails
        raise typer.BadParameter(f"cannot read standard input ({e.strerror or e}); pipe an image into it: "
                                 "digitlab ... - < digit.png.", param_hint="FILES") from None
    image.name = "<stdin>"
    return image


def _output_folder(folder: Path | None, files: list[Path], option: str) -> list[Path]:
    """The output folder as `expand`'s `skip`, once it is known not to be a folder read: images
    written among the user's would be read on the next run, and the user's overwritten."""
    if folder is None:
        return []
    if folder.is_dir() and any(f.is_dir() and f.samefile(folder) for f in files):
        raise typer.BadParameter(f"{folder} is a folder of the images read; name another folder for the output.",
                                 param_hint=option)
    return [folder]


def _make_folder(folder: Path, option: str) -> None:
    """Make an output folder (and its parents), or say in one line why it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise typer.BadParameter(f"cannot make the folder {folder} ({e.strerror or e}).", param_hint=option) from None


def _numbered_name(i: int, source: Path) -> str:
    """The file for image i in an output folder: its number keeps the input's order, and its stem is
    cut to 100 bytes (a file system takes 255 bytes a name)."""
    return f"{i:06d}-{shortened(source.stem, 100)}.png"


# The formats an output image may be named as: Pillow writes dozens more, but some cannot hold an
# RGB image (XBM, MSP, Palm), some need a plug-in registered first (FITS, HDF5, GRIB, BUFR).
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".webp": "WEBP", ".gif": "GIF"}


def image_format(path: Path) -> str | None:
    """The Pillow format a file name asks for (".png" -> "PNG"), None for a name digitlab does not write."""
    return OUTPUT_FORMATS.get(path.suffix.lower())


def save_image(image, path: Path) -> None:
    """Save a Pillow image atomically, in the format its name says; one line if it cannot be written."""
    with write_errors(path, "the image"), atomic_write(path) as tmp:
        image.save(tmp, format=image_format(path) or "PNG")


def draw_boxes(image, reading):
    """A copy of the image (RGB) with each digit's box and reading drawn on it."""
    from PIL import ImageDraw

    from digitlab.images.read import open_image, upright

    picture = upright(open_image(image)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(picture.size) / 300))
    for (top, left, bottom, right), d in zip(reading.boxes, reading.digits):
        colour = (46, 125, 50) if d.digit is not None else (198, 40, 40)
        draw.rectangle([left - width, top - width, right + width, bottom + width], outline=colour, width=width)
        draw.text((left, max(0, top - 12 * width)), f"{d.digit or '?'} {d.probability:.0%}", fill=colour)
    return picture


def _why_unsure(digit) -> str:
    """After a "?" of `read`: which of the two it is, since its percentage is of another class."""
    from digitlab.data.notdigits import NOT_A_DIGIT

    if digit.digit is not None:
        return ""
    best = digit.top[0][0]
    return "  (not a digit)" if best == NOT_A_DIGIT else f"  (best guess {escape(best)}, under the threshold)"


def _utf8(value):
    """A --json record or --csv row with its names as UTF-8 text (`files.utf8_name`): a name's bytes
    that are not UTF-8 failed the output part-way, or made a CSV file no UTF-8 reader opens."""
    if isinstance(value, str):
        return utf8_name(value)
    if isinstance(value, dict):
        return {k: _utf8(v) for k, v in value.items()}
    return [_utf8(v) for v in value] if isinstance(value, list) else value


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv.")


def _on_cluster(task: str, files: list[str], cluster: str | None, out_file: Path | None, other_output: bool,
                recognizer) -> None:
    """`predict` or `read` (`task`) with --cluster: every file on the cluster, the rows into --out."""
    from digitlab.cluster.connect import check_address, connected, import_ray
    from digitlab.cluster.predict import check_out, predict_on_cluster
    from digitlab.images.folders import expand
    from digitlab.images.read import Unreadable

    if cluster is None or out_file is None:
        raise ClusterError("--cluster and --out go together: --cluster ADDRESS --out results.csv (or .parquet, or a new FOLDER of parts).")
    if other_output:
        saved = "--save-prepared" if task == "predict" else "--save-boxes"
        raise ClusterError(f"--cluster writes its results to --out; leave out --json, --csv and {saved}.")
    if _piped(files):
        raise ClusterError("--cluster reads files every node can reach, not standard input ('-').")
    files = [Path(f) for f in files]
    check_address(cluster)
    check_out(out_file)
    import_ray()
    found = list(expand(files))
    bad = next((p for p in found if isinstance(p, Unreadable) or not _regular_file(p)), None)
    if bad is not None:  # locally a row of its own; Ray would fail the whole job on it
        raise ClusterError(f"{bad.message} --cluster reads existing, readable files only." if isinstance(bad, Unreadable)
                           else f"{bad}: no such file, not a regular file, or not readable; --cluster reads existing, "
                                "readable files only.")
    paths = [str(p) for p in found]
    model = recognizer()
    with connected(cluster) as resources:
        err.print(f"Cluster {escape(cluster)}: {resources.get('CPU', 0):g} CPUs; {len(paths):,} files", highlight=False)
        counts = predict_on_cluster(model, paths, out_file, task=task)
    parts = f" as {len(list(out_file.glob('part-*.parquet'))):,} Parquet parts" if out_file.is_dir() else ""
    unsure = f"{counts['unsure']:,} unsure, " if task == "predict" else ""  # a reading's "?" is in its text
    out.print(f"Wrote {len(paths):,} rows to {escape(str(out_file))}{parts} ({counts['ok']:,} ok, {unsure}"
              f"{counts['error']:,} errors)", highlight=False)
    _exit_if_failed(counts["error"], len(paths), f"their messages are in {escape(str(out_file))}")


def _regular_file(path: Path) -> bool:
    try:
        return path.is_file() and os.access(path, os.R_OK)
    except OSError:  # a folder that cannot be entered: is_file raises
        return False


def _exit_if_failed(failed: int, total: int, where: str = "see the messages above") -> None:
    """Exit 1 after the others if any image failed: a script sees it, and each message was shown."""
    if failed:
        err.print(f"{failed} of {total} image(s) could not be read; {where}.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
