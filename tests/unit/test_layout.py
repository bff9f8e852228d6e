"""The package's layout: subpackages that show the pipeline, and imports that flow one way."""

from __future__ import annotations

import ast
from pathlib import Path

import digitlab

PACKAGE = Path(digitlab.__file__).parent
# Left to right, as the README's map says: a module may import from its own layer and those to its left.
LAYERS = [
    {"errors", "files", "threads", "config", "runs"},
    {"scratch"},
    {"images"},
    {"data"},
    {"models"},
    {"training"},
    {"evaluation"},
    {"reports"},
    {"lab", "recognize"},
    {"cluster"},
    {"cli", "serve"},
    {"__init__", "__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _digitlab_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported digitlab top-level name) for every import in the file, deferred ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "digitlab":
            parts = node.module.split(".")
            names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names
                      if a.name.startswith("digitlab.")]
    return found


def test_every_module_sits_in_a_layer_and_imports_only_to_its_left():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        home = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        assert home in LAYER, f"{path}: {home} is in no layer; add it to LAYERS and the README's map"
        for line, target in _digitlab_imports(path):
            if target in LAYER and LAYER[target] > LAYER[home]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports digitlab.{target}")
    assert wrong == []


def test_at_most_twelve_modules_are_left_loose():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= 12, loose


def test_the_layer_check_sees_a_wrong_import(tmp_path):
    """The check above would fail on an import that runs back up the pipeline."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from digitlab.lab.pipeline import train\n")
    assert _digitlab_imports(bad) == [(2, "lab")] and LAYER["lab"] > LAYER["data"]


def test_every_error_class_lives_in_errors():
    """Library errors are declared in one place, so the CLI and the server know them all. (A private
    class such as data.fetch's _MirrorFailed is a signal inside one module that never leaves it.)"""
    defined_elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception")) or
                    getattr(b, "id", "") in ("Interrupted", "TrainingDiverged") for b in node.bases):
                defined_elsewhere.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert defined_elsewhere == []
