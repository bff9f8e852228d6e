"""How the CLI shows results on a terminal: evaluation tables, diagnoses, prediction lines."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from digitlab.cli.options import escape


def print_evaluation(out: Console, ev) -> None:
    """Test scores, the confusion matrix as a table, per-class report, calibration, confusions."""
    arithmetic = ", computed in mixed bfloat16" if ev.compute_precision == "mixed_bfloat16" else ""
    out.print(f"Test loss: {ev.loss:.4f}   Test accuracy: {ev.accuracy:.4f} ({ev.accuracy:.2%} of "
              f"{len(ev.labels):,} {escape(ev.dataset)} test images{arithmetic})")
    names = ev.class_names
    cm = Table(title="Confusion matrix (rows: true, columns: predicted)", show_lines=False)
    cm.add_column("true \\ pred", style="bold")
    for name in names:
        cm.add_column(escape(name[:8]), justify="right")
    for i, name in enumerate(names):
        cells = [f"[bold green]{c}[/]" if i == j else (f"[red]{c}[/]" if c else "·") for j, c in enumerate(ev.confusion[i])]
        cm.add_row(escape(name), *cells)
    out.print(cm)
    report = Table(title="Per-class report")
    for col in ("class", "precision", "recall", "F1", "support"):
        report.add_column(col, justify="left" if col == "class" else "right")
    for r in ev.per_class:
        report.add_row(escape(r["class"]), f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", str(r["support"]))
    out.print(report)
    cal = ev.calibration()
    if "temperature" in cal:
        out.print(f"Calibration (expected calibration error): {cal['ece']:.4f} raw, {cal['ece_calibrated']:.4f} "
                  f"after temperature scaling (T = {cal['temperature']:.3f}, fitted on the validation split)")
    else:
        out.print(f"Calibration (expected calibration error): {cal['ece']:.4f} (no temperature fitted for this model)")
    out.print("Most confused pairs:")
    for p in ev.most_confused():
        out.print(f"  true {escape(p['true'])} taken for {escape(p['predicted'])}: {p['count']} times")


def print_diagnosis(out: Console, result) -> None:
    """One line per hidden layer with its verdict, then the thresholds behind the verdicts."""
    if not result.layers:
        out.print("No hidden layers: the network maps the pixels straight to the classes, so there is nothing "
                  "inside it to diagnose. Try a preset with hidden layers, such as mlp-deep-sigmoid.")
        return
    if result.not_learning:
        out.print(f"[red]{escape(result.not_learning[0].upper() + result.not_learning[1:])}[/]", highlight=False)
    out.print(f"Hidden layers over {result.images:,} training images:")

    def num(v):
        return "-" if v is None else f"{v:.3g}"

    for r in result.layers:
        share = (f"dead {r.dead_fraction:.1%}" if r.dead_fraction is not None
                 else f"saturated {r.saturated_fraction:.1%}")
        grads = (f", grad norm {num(r.grad_norm)} ({num(r.grad_ratio)} x the largest), update ratio {num(r.update_ratio)}"
                 if r.grad_norm is not None else "")
        style = "green" if r.verdict == "healthy" else "yellow" if not r.verdicts else "red"
        out.print(f"  {r.name} ({r.activation}, {r.units} units): {share}, activation mean {r.mean:.3f} "
                  f"sd {r.std:.3f}{grads} -> [{style}]{escape(r.verdict)}[/]")
    t = result.thresholds
    out.print(f"Thresholds: dead = zero for every training image, reported at >= {t['dead_layer_share']:.0%} of a layer; "
              f"saturated = within {t['saturation_margin']} of the bounds on > {t['saturated_unit_share_of_images']:.0%} of images, "
              f"reported at >= {t['saturated_layer_share']:.0%}; vanishing = gradient norm < {t['vanishing_ratio']:g} x the largest layer's; "
              f"not learning = last training loss >= {t['not_learning_loss']:g} x chance's.")
    if not result.history_used:
        out.print("No per-layer gradient history (a bare model file, a run without one, or one whose last epoch's "
                  "norms are not all finite numbers): activation checks only.")


def prediction_line(pred) -> str:
    source = escape(pred.source)
    if pred.status == "error":
        return f"[red]error:[/] {escape(pred.message)}"  # the message names the file
    top = " · ".join(f"{escape(c)} {p:.1%}" for c, p in pred.top)
    if pred.status == "unsure":
        return f"{source}: [yellow]unsure[/] ({escape(pred.message)})  top 3: {top}"
    note = f"  ({escape(pred.message)})" if pred.message else ""  # a hint, such as several digits' (to read them)
    return f"{source}: [bold]{escape(pred.digit)}[/] ({pred.probability:.1%})  top 3: {top}{note}"


def progress(err: Console, total: int):
    """A progress bar on stderr for long batches on a terminal; a no-op otherwise."""
    from rich.progress import Progress  # deferred: only a batch on a terminal draws one

    @contextmanager
    def bar():
        if total < 20 or not err.is_terminal:
            yield lambda: None
            return
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("recognising", total=total)
            yield lambda: progress.advance(task)

    return bar()
