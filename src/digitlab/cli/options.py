"""What the `digitlab` commands share: the consoles, argument checks and common options."""

from __future__ import annotations

import math
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape as escape_markup

from digitlab.data import DATASETS
from digitlab.data.load import expand_user
from digitlab.data.pen import MNIST_PEN
from digitlab.errors import DataError
from digitlab.files import utf8_name

# emoji=False: Rich would print a file named "scan:fire:01.png" as "scan🔥01.png"
out = Console(soft_wrap=True, emoji=False)  # paths stay whole on one line, for copy and paste
err = Console(stderr=True, emoji=False)
# C0 and C1 controls; zero-width, direction marks and overrides; line and paragraph separators; BOM
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def escape(text: str) -> str:
    """`text` (a file name, a message naming one) to print as it is: Rich's markup escaped, and
    control characters shown as \\xNN: an ESC in a file name would otherwise drive the terminal,
    and a newline (or a Unicode line separator) in one would print a line of its own, such as a
    made-up answer ("seven.png: 7"); a bidirectional override would show the name reversed. A
    name's bytes that are not UTF-8 are shown as \\xNN too (`files.utf8_name`)."""
    return escape_markup(CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                     else f"\\u{ord(m.group()):04x}", utf8_name(text)))


def choice(kind: str, choices):
    article = "an" if kind[0] in "aeiou" else "a"

    def check(value):
        if value is not None and value not in choices:
            raise typer.BadParameter(f'"{value}" is not {article} {kind}. Choose one of: {", ".join(choices)}.')
        return value

    return check


def dataset_arg(value):
    """A registered data set name, or a path to your own data (checked when it is loaded)."""
    if value is None or value in DATASETS or value == MNIST_PEN:
        return value
    if not value.strip() and not (value and Path(value).exists()):  # Path("") is the current folder: an unset "$DS"
        raise typer.BadParameter(f'is empty; name a data set ({", ".join([*DATASETS, MNIST_PEN])}) or the path to '
                                 "your own data (\".\" for the current folder).")
    try:
        path = expand_user(value)
    except DataError as e:
        raise typer.BadParameter(str(e)) from None
    if not path.exists():
        raise typer.BadParameter(f'"{value}" is not a data set ({", ".join([*DATASETS, MNIST_PEN])}) nor an existing '
                                 "file or folder of your own data.")
    return str(path.resolve())  # the run's config.json must find it again from any folder


JsonLinesOption = typer.Option(False, "--json", help="One JSON object per image (JSON Lines).")
CsvOption = typer.Option(False, "--csv", help="CSV with a header row, one row per image.")
TrustOption = typer.Option(False, "--trust-model", help="Load a .keras file even if it carries code (a Lambda "
                           "layer); only for a file you trust.")


def in_range(flag: str, low: float, high: float | None, low_closed: bool = False):
    """A check that low < value (<= when low_closed) and value < high."""

    def check(value):
        if value is None:
            return value
        if not math.isfinite(value):  # NaN passes every comparison below; infinity the open upper bound
            raise typer.BadParameter(f"{value} is not a number digitlab can use; {flag} must be a finite number.")
        if (value < low if low_closed else value <= low) or (high is not None and value >= high):
            bounds = f"{'[' if low_closed else '('}{low:g}, {high:g})" if high is not None else f"greater than {low:g}"
            raise typer.BadParameter(f"{value:g} is out of range; {flag} must be {'in ' if high is not None else ''}{bounds}.")
        return value

    return check


# The options several commands take, each declared once here.
RunArgument = typer.Argument(None, help="Run folder, or a model file (.keras, .skops) [default: the latest run in --runs].")
ModelOption = typer.Option(None, "--model", help="Run folder, a model file (.keras, .skops), or 'reader': the model "
                           "shipped with digitlab [default: the latest complete run of digits in --runs, else the reader].")
RunsOption = typer.Option(Path("runs"), "--runs", help="Where to look for the latest run.")
ThresholdOption = typer.Option(0.5, min=0, max=1, help="Below this probability an answer is 'unsure' (a digit of a "
                               "number reads as '?').")

DataDirOption = typer.Option(
    None, "--data-dir", help="Folder with the data set's IDX files (<dir>/<dataset>/...); also $DIGITLAB_DATA."
)

# A sweep on a Ray cluster (compare, reproduce): each training a Ray Tune trial.
RecognizeClusterOption = typer.Option(
    None, "--cluster", help="Recognise on a Ray cluster: auto, HOST:PORT, ray://HOST:PORT, or local:N (N nodes started "
    "here). Needs --out and digitlab[ray].")
ClusterOutOption = typer.Option(
    None, "--out", help="With --cluster: the results file, .csv or .parquet (the columns of --csv); or a new folder "
    "(no suffix) on storage every node reaches, where the nodes write Parquet parts (for millions of files).")
ClusterOption = typer.Option(None, help="Train on a Ray cluster, each training a Ray Tune trial: auto, HOST:PORT, "
                             "ray://HOST:PORT or local:N. --out must be on storage every node sees.")
CpusPerRunOption = typer.Option(1, min=0.01, help="With --cluster: CPUs each training reserves.")
RetriesOption = typer.Option(2, min=0, help="With --cluster: times a failed training is tried again (resumed from "
                             "its last checkpoint when it has one).")


def names(value: str, kind: str, choices) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        choice(kind, choices)(name)
    if not names:
        raise typer.BadParameter(f"name at least one {kind}.")
    return names
