"""How well trained runs read real handwriting: pen digits of writers they never saw, and not-digits.

    python benchmarks/handwriting.py runs/<mlp run> runs/<cnn run>          # a table per run
    python benchmarks/handwriting.py runs/<run> --numbers 300 --json        # one JSON object per run

The digits are `pen-digits/dev.json` (386 digits by 23 writers at 4 sites, UNIPEN; see its
SOURCE.md): real pen trajectories, drawn as the draw page draws them (280 x 280 canvas, a round pen
20 pixels wide, black on white) and in the other colour scheme, thin and thick pens, then read
through `Recognizer.predict` exactly as a user's image is (decoding, ink detection, MNIST-style
preparation). Numbers are 3 to 8 dev digits written side by side on the page's 720 x 240 number
canvas and read whole with `Recognizer.read`. Not-digits (uniform noise, random scribbles, capital
letters drawn from a font, a blank canvas) should come back "unsure" (or, blank, an error): the
share that did is reported, and the share that `read` reads as a number without a digit it is
sure of (all "?"); so is the share of 52 letters in Pillow's font and each DejaVu font
installed, all and leaving out the digit-shaped (B, G, I, O, S, Z, ...). Printed digits in the same
fonts (the reader trains on print in other fonts, `digitlab.data.printed`; no other preset on print):
alone, and as numbers read whole; and dev numbers written on
forms (underlined, framed, in boxes, on ruled paper); each dev digit alone in a box, in a box it runs
into, in a form's cell cut a little wide, above a line. MNIST test accuracy is the run's own
(metrics.json).
"""

from __future__ import annotations

import argparse
import json
import os
import string
import sys
import time
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitlab.data.pen import load_pen_digits
from digitlab.data.printed import DIGIT_SHAPED  # letters a font or a hand makes like a digit: the reader's training leaves them out
from digitlab.errors import ImageError
from digitlab.images.strokes import draw_number, draw_strokes
from digitlab.images.synthetic import CELLS, FORMS, in_cell, on_form
from digitlab.recognize import Recognizer
from digitlab.runs import METRICS_FILE

STYLES = {  # name: draw_strokes arguments
    "page": {},
    "light-on-dark": {"light_on_dark": True},
    "thin pen (8 px)": {"pen_width": 8},
    "thick pen (36 px)": {"pen_width": 36},
    "small, off-centre": {"height_share": 0.35, "centre": (90, 190)},
}


def answers(recognizer: Recognizer, images: list[np.ndarray]) -> list:
    return recognizer.predict(images)


def read_as_no_digits(recognizer: Recognizer, image: np.ndarray) -> bool:
    """Whether `read` finds no digit it is sure of in an image: all "?", or none at all."""
    try:
        return all(ch == "?" for ch in recognizer.read(image).text)
    except ImageError:  # blank: nothing to read
        return True


def reads_as(recognizer: Recognizer, image, text: str, name: str = "image") -> bool:
    """Whether `read` reads the number in `image` as `text`; a number it cannot read is wrong."""
    try:
        return recognizer.read(image, name).text == text
    except ImageError:
        return False


def digit_accuracy(recognizer: Recognizer, digits, style: dict) -> tuple[float, np.ndarray, np.ndarray]:
    """The share of best guesses right (sure or not), and per digit: best guess right; answer shown
    (sure enough, not "unsure") and right."""
    images = [draw_strokes(d.strokes, **style) for d in digits]
    preds = answers(recognizer, images)
    truth = [recognizer.class_names[d.label] for d in digits]
    correct = np.array([bool(p.top) and p.top[0][0] == t for p, t in zip(preds, truth)])
    shown = np.array([p.digit == t for p, t in zip(preds, truth)])
    return float(correct.mean()), correct, shown


def number_accuracy(recognizer: Recognizer, digits, count: int, rng: np.random.Generator,
                    alone_right: np.ndarray) -> tuple[float, float]:
    """Whole-string accuracy of `read` on `count` numbers of 3-8 digits, and the share of them whose
    digits are all answered right alone (`alone_right`, per digit): what a perfect split would give."""
    right, alone = 0, 0
    for _ in range(count):
        idx = rng.integers(0, len(digits), int(rng.integers(3, 9)))
        picked = [digits[i] for i in idx]
        image = draw_number([d.strokes for d in picked], rng)
        truth = "".join(recognizer.class_names[d.label] for d in picked)
        alone += bool(alone_right[idx].all())
        try:
            right += recognizer.read(image, "number").text == truth
        except Exception:  # noqa: BLE001 - a number it cannot read counts as wrong
            pass
    return right / count, alone / count


def form_accuracy(recognizer: Recognizer, digits, count: int, rng: np.random.Generator) -> dict[str, float]:
    """Whole-string accuracy of `read` on `count` numbers of 3-6 digits written plain and on each of
    `synthetic.FORMS` (the same numbers on every form)."""
    right = defaultdict(int)
    for _ in range(count):
        idx = rng.integers(0, len(digits), int(rng.integers(3, 7)))
        number = draw_number([digits[i].strokes for i in idx], rng)
        truth = "".join(recognizer.class_names[digits[i].label] for i in idx)
        for form in ("plain", *FORMS):
            right[form] += reads_as(recognizer, number if form == "plain" else on_form(number, len(idx), form), truth, form)
    return {form: right[form] / count for form in ("plain", *FORMS)}


def cell_accuracy(recognizer: Recognizer, digits) -> dict[str, float]:
    """The share of digits answered (shown, sure) right alone, page style, and in each of
    `synthetic.CELLS` (a box, a form's cell, a line under it)."""
    truth = [recognizer.class_names[d.label] for d in digits]
    images = [draw_strokes(d.strokes) for d in digits]
    result = {}
    for cell in ("plain", *CELLS):
        preds = answers(recognizer, images if cell == "plain" else [in_cell(im, cell) for im in images])
        result[cell] = float(np.mean([p.digit == t for p, t in zip(preds, truth)]))
    return result


FONTS = ["DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "DejaVuSans-Bold", "DejaVuSerif-Italic"]  # where installed
FONT_FOLDER = "/usr/share/fonts/truetype/dejavu"


def letter(ch: str, font) -> np.ndarray:
    """One letter drawn from a font on the page's 280 x 280 canvas, black on white."""
    im = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(im).text((140, 140), ch, fill=0, font=font, anchor="mm")
    return np.asarray(im)


def font_letters(recognizer: Recognizer) -> dict:
    """The share of 52 letters reported unsure, in Pillow's own font and each DejaVu font found:
    all of them, and leaving out the digit-shaped ones."""
    fonts = fonts_found(160)
    chars = string.ascii_letters * len(fonts)
    preds = answers(recognizer, [letter(ch, font) for font in fonts for ch in string.ascii_letters])
    unsure = [p.status != "ok" for p in preds]
    return {"fonts": len(fonts), "all": float(np.mean(unsure)),
            "not_digit_shaped": float(np.mean([u for ch, u in zip(chars, unsure) if ch not in DIGIT_SHAPED]))}


def fonts_found(size: int) -> list:
    """Pillow's own font and each DejaVu font installed, at `size` pixels."""
    return [ImageFont.load_default(size=size)] + [ImageFont.truetype(f"{FONT_FOLDER}/{name}.ttf", size) for name in FONTS
                                                  if os.path.isfile(f"{FONT_FOLDER}/{name}.ttf")]


def printed(recognizer: Recognizer, rng: np.random.Generator, count: int) -> dict:
    """Printed digits in fonts no preset trains on: the ten digits alone in each font
    (answer shown and right), and `count` numbers of 3-8 digits read whole, in a font, size (30-120
    pixels) and colour scheme picked at random."""
    fonts = fonts_found(160)
    preds = answers(recognizer, [letter(str(d), font) for font in fonts for d in range(10)])
    digits_right = np.mean([p.digit == str(i % 10) for i, p in enumerate(preds)])
    right, sized = 0, {}
    for _ in range(count):
        size = int(rng.integers(30, 121))
        font = sized.setdefault(size, fonts_found(size))[int(rng.integers(len(fonts)))]
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 9))))
        left, top, width, bottom = font.getbbox(text)
        im = Image.new("L", (width + 60, bottom + 60), 255)
        ImageDraw.Draw(im).text((30, 30), text, fill=0, font=font)
        right += reads_as(recognizer, np.asarray(im) if rng.random() < 0.5 else 255 - np.asarray(im), text)
    return {"fonts": len(fonts), "digits_shown_right": float(digits_right), "numbers": count,
            "numbers_whole": right / count}


def not_digits(rng: np.random.Generator, count: int) -> dict[str, list[np.ndarray]]:
    """Images that are no digit, drawn the way the page would receive them."""
    font = ImageFont.load_default(size=160)
    letters = [letter(ch, font) for ch in string.ascii_uppercase[: count]]
    scribbles = []
    for _ in range(count):
        im = Image.new("L", (280, 280), 255)
        points = [tuple(rng.uniform(30, 250, 2)) for _ in range(int(rng.integers(8, 20)))]
        ImageDraw.Draw(im).line(points, fill=0, width=20, joint="curve")
        scribbles.append(np.asarray(im))
    noise = [(rng.random((280, 280)) * 255).astype(np.uint8) for _ in range(count)]
    blank = [np.full((280, 280), 255, np.uint8)]
    return {"noise": noise, "scribbles": scribbles, "letters": letters, "blank": blank}


def measure(run: str, digits, numbers: int, seed: int) -> dict:
    recognizer = Recognizer.load(run)  # "reader": the model shipped with digitlab
    opened = recognizer.run
    rng = np.random.default_rng(seed)
    result = {"run": opened.folder.name if opened.folder else str(run), "preset": opened.preset,
              "mnist_test": (opened.read(METRICS_FILE) or {}).get("test_accuracy")}
    started = time.perf_counter()
    per_style, page_correct, page_shown = {}, None, None
    for name, style in STYLES.items():
        per_style[name], correct, shown = digit_accuracy(recognizer, digits, style)
        if name == "page":
            page_correct, page_shown = correct, shown
    result["dev_digits"] = per_style
    result["dev_page_shown"] = float(page_shown.mean())
    by_site, by_class = defaultdict(list), defaultdict(list)
    for d, ok in zip(digits, page_correct):
        by_site[d.site].append(ok)
        by_class[d.label].append(ok)
    result["page_by_site"] = {k: round(float(np.mean(v)), 4) for k, v in sorted(by_site.items())}
    result["page_by_class"] = {str(k): round(float(np.mean(v)), 4) for k, v in sorted(by_class.items())}
    result["dev_numbers_whole"], result["dev_numbers_alone"] = number_accuracy(recognizer, digits, numbers, rng, page_shown)
    unsure, read_unsure = {}, {}
    for kind, images in not_digits(rng, 26).items():
        preds = answers(recognizer, images)
        unsure[kind] = float(np.mean([p.status != "ok" for p in preds]))
        read_unsure[kind] = float(np.mean([read_as_no_digits(recognizer, image) for image in images]))
    result["not_digits_unsure"] = unsure
    result["not_digits_read_unsure"] = read_unsure  # by `read`, as a number: every digit "?" (or none found)
    result["font_letters_unsure"] = font_letters(recognizer)
    result["printed"] = printed(recognizer, rng, numbers)
    result["forms"] = form_accuracy(recognizer, digits, numbers // 3, rng)
    result["cells"] = cell_accuracy(recognizer, digits)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def table(result: dict) -> str:
    rows = [f"### {result['run']} ({result['preset']})", "", "| measure | accuracy |", "|---|---|"]
    if result["mnist_test"] is not None:
        rows.append(f"| MNIST test (metrics.json) | {result['mnist_test']:.2%} |")
    rows += [f"| dev.json digits, {name} | {v:.1%} |" for name, v in result["dev_digits"].items()]
    rows.append(f"| dev.json digits, page, the answer shown (sure, not \"unsure\") | {result['dev_page_shown']:.1%} |")
    rows.append(f"| dev.json numbers of 3-8 digits, whole string | {result['dev_numbers_whole']:.1%} |")
    rows.append(f"| ... whose digits are all answered right alone (page style; a perfect split) | {result['dev_numbers_alone']:.1%} |")
    rows += [f"| not a digit: {k}, reported unsure | {v:.0%} |" for k, v in result["not_digits_unsure"].items()]
    rows.append("| not a digit, read as a number (`read`): no digit it is sure of, " + " / ".join(
        result["not_digits_read_unsure"]) + " | " + " / ".join(f"{v:.0%}" for v in result["not_digits_read_unsure"].values()) + " |")
    fonts = result["font_letters_unsure"]
    rows.append(f"| 52 letters x {fonts['fonts']} fonts, reported unsure: all / not digit-shaped "
                f"| {fonts['all']:.1%} / {fonts['not_digit_shaped']:.1%} |")
    ink = result["printed"]
    rows.append(f"| printed, {ink['fonts']} fonts never trained on: the ten digits alone, shown and right / "
                f"{ink['numbers']} numbers of 3-8 digits, whole | {ink['digits_shown_right']:.1%} / {ink['numbers_whole']:.1%} |")
    forms = result["forms"]
    rows.append(f"| dev.json numbers of 3-6 digits on a form, whole string: {' / '.join(forms)} "
                f"| {' / '.join(f'{v:.0%}' for v in forms.values())} |")
    cells = result["cells"]
    rows.append(f"| dev.json digits alone, page, shown and right: {' / '.join(cells)} "
                f"| {' / '.join(f'{v:.1%}' for v in cells.values())} |")
    rows += ["", "Page style by site: " + ", ".join(f"{k} {v:.1%}" for k, v in result["page_by_site"].items()),
             "By class: " + ", ".join(f"{k} {v:.0%}" for k, v in result["page_by_class"].items()), ""]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (or .keras files) to measure; 'reader' for the shipped reader")
    parser.add_argument("--numbers", type=int, default=200, help="composed numbers to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args()
    digits = load_pen_digits("dev", args.data_dir)
    for run in args.runs:
        result = measure(run, digits, args.numbers, args.seed)
        print(json.dumps(result) if args.json else table(result), flush=True)
    return None


if __name__ == "__main__":
    sys.exit(main())
