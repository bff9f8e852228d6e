"""Render MNIST digits the way users photograph, scan and draw them, to test recognition honestly.

`render_digit` turns a 28 x 28 MNIST digit into an image file a user might produce (dark ink on
paper, colours, transparency, large and off-centre, thick strokes, JPEG, uneven light);
`compose_number` lays several digits out as a handwritten number with random spacing, size and
vertical jitter, some pairs touching; `on_form` puts a number on a form (underlined, framed, in
boxes, on ruled paper), `in_cell` one digit in a box or a form's cell.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = ("inverted", "paper", "rgb-background", "transparent", "large-offcentre", "thick", "jpeg", "uneven-light")


def render_digit(digit: np.ndarray, style: str, rng: np.random.Generator) -> bytes:
    """PNG or JPEG bytes of a (28, 28) uint8 MNIST digit rendered in one of STYLES."""
    ink = Image.fromarray(digit)
    size = int(rng.integers(200, 601))
    if style == "inverted":  # black ink on white, small
        return _png(Image.fromarray(255 - digit))
    if style == "paper":  # scanned: off-white paper, grey ink, larger
        return _png(_on_paper(ink.resize((size, size), Image.Resampling.BICUBIC), paper=235, pen=40))
    if style == "rgb-background":
        big = np.asarray(ink.resize((size, size), Image.Resampling.BICUBIC), np.float32)[:, :, None] / 255
        paper = rng.integers(150, 256, 3).astype(np.float32)
        pen = rng.integers(0, 90, 3).astype(np.float32)
        return _png(Image.fromarray(np.uint8(paper * (1 - big) + pen * big)))
    if style == "transparent":  # a drawing app: dark strokes, transparent background
        big = ink.resize((size, size), Image.Resampling.BICUBIC)
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[:, :, :3] = 20
        rgba[:, :, 3] = np.asarray(big)
        return _png(Image.fromarray(rgba))
    if style == "large-offcentre":  # the digit small in a corner of a big page
        page = Image.new("L", (size, size), 255)
        side = int(size * rng.uniform(0.25, 0.45))
        x, y = (int(rng.integers(0, size - side)) for _ in range(2))
        page.paste(Image.fromarray(255 - np.asarray(ink.resize((side, side), Image.Resampling.BICUBIC))), (x, y))
        return _png(page)
    if style == "thick":  # a felt pen
        big = ink.resize((size, size), Image.Resampling.BICUBIC).filter(ImageFilter.MaxFilter(int(size / 28) | 1))
        return _png(Image.fromarray(255 - np.asarray(big)))
    if style == "jpeg":
        big = _on_paper(ink.resize((size, size), Image.Resampling.BICUBIC), paper=250, pen=10)
        out = io.BytesIO()
        big.save(out, format="JPEG", quality=int(rng.integers(30, 70)))
        return out.getvalue()
    if style == "uneven-light":  # a phone photo with a shadow across the page
        big = np.asarray(_on_paper(ink.resize((size, size), Image.Resampling.BICUBIC), paper=230, pen=30), np.float32)
        ramp = np.linspace(1.0, rng.uniform(0.35, 0.6), size, dtype=np.float32)
        light = ramp[None, :] if rng.random() < 0.5 else ramp[:, None]
        return _png(Image.fromarray(np.uint8(np.clip(big * light, 0, 255))))
    raise ValueError(f"unknown style {style!r}; styles: {', '.join(STYLES)}")


def _on_paper(ink: Image.Image, paper: int, pen: int) -> Image.Image:
    a = np.asarray(ink, np.float32) / 255
    return Image.fromarray(np.uint8(paper * (1 - a) + pen * a))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def compose_number(digits: list[np.ndarray], rng: np.random.Generator, touch_probability: float = 0.15) -> Image.Image:
    """Dark-on-white image of MNIST digits side by side: random spacing, size and vertical jitter;
    with `touch_probability`, a pair is pushed together until the strokes touch."""
    scale = rng.uniform(1.5, 3.0)
    pieces = []
    for d in digits:
        s = scale * rng.uniform(0.9, 1.1)
        side = max(14, int(28 * s))
        pieces.append(np.asarray(Image.fromarray(d).resize((side, side), Image.Resampling.BICUBIC), np.float32))
    height = max(p.shape[0] for p in pieces) + int(20 * scale)
    width = sum(p.shape[1] for p in pieces) + int(40 * scale)
    canvas = np.zeros((height, width), np.float32)
    x = int(10 * scale)
    for i, p in enumerate(pieces):
        y = int((height - p.shape[0]) / 2 + rng.uniform(-4, 4) * scale)
        h, w = p.shape
        canvas[y : y + h, x : x + w] = np.maximum(canvas[y : y + h, x : x + w], p)
        # MNIST digits sit in a 28-pixel frame with ~4 pixels of margin on each side.
        gap = rng.uniform(-7.0, -5.5) if rng.random() < touch_probability else rng.uniform(-4, 4)
        x += w + int(gap * scale)
    canvas = canvas[:, : x + int(10 * scale)]
    return Image.fromarray(np.uint8(255 - np.clip(canvas, 0, 255)))


FORMS = ("underline", "tilted underline", "frame", "boxes", "comb", "ruled paper")


def on_form(number: np.ndarray, digits: int, form: str) -> Image.Image:
    """A number as `digitlab.images.strokes.draw_number` writes it (dark on white, `digits` digits
    in slots of equal width) on a form: underlined (level, or 2.6 degrees off), framed, in a box a
    digit (close-set, so that a digit wider than its box touches it), in a comb (one row of
    boxes sharing their lines), or on ruled paper (thin blue lines through the digits)."""
    image = Image.fromarray(number).convert("RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    slot = width / (digits + 0.5)
    top, bottom = 0.08 * height, 0.92 * height
    box_line = max(2, height // 80)
    if form == "underline":
        draw.line([(0.02 * width, 0.9 * height), (0.98 * width, 0.9 * height)], fill=0, width=max(2, height // 40))
    elif form == "tilted underline":
        y = 0.84 * height
        draw.line([(0.02 * width, y), (0.98 * width, y + 0.96 * width * 0.045)], fill=0, width=max(2, height // 40))
    elif form == "frame":
        draw.rectangle([4, 4, width - 5, height - 5], outline=0, width=max(2, height // 50))
    elif form == "boxes":
        for j in range(digits):
            draw.rectangle([slot * (j + 0.25), top, slot * (j + 1.25) - 2, bottom], outline=0, width=box_line)
    elif form == "comb":
        for y in (top, bottom):
            draw.line([(slot * 0.25, y), (slot * (digits + 0.25), y)], fill=0, width=box_line)
        for j in range(digits + 1):
            draw.line([(slot * (j + 0.25), top), (slot * (j + 0.25), bottom)], fill=0, width=box_line)
    elif form == "ruled paper":
        for y in np.arange(0.125, 1, 0.23) * height:
            draw.line([(0, y), (width, y)], fill=(120, 150, 230), width=max(1, height // 120))
    else:
        raise ValueError(f"unknown form {form!r}; forms: {', '.join(FORMS)}")
    return image


CELLS = ("box", "box touching", "cell edges", "line below")


def in_cell(digit: np.ndarray, cell: str) -> Image.Image:
    """One digit as `digitlab.images.strokes.draw_strokes` draws it (dark on white, 280 x 280, its
    strokes about 20 px) with thin lines as a form gives a digit alone: a box around it, a box it
    runs into, two sides of the form cell it was cut from (at the image's edges), a line under it."""
    image = Image.fromarray(digit)
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = max(3, height // 70)
    if cell == "box":
        draw.rectangle([width // 28, height // 28, width - 1 - width // 28, height - 1 - height // 28], outline=0, width=line)
    elif cell == "box touching":
        draw.rectangle([0.21 * width, 0.14 * height, 0.79 * width, 0.86 * height], outline=0, width=line)
    elif cell == "cell edges":
        draw.line([(0, height // 45), (width - 1, height // 45)], fill=0, width=line)
        draw.line([(width // 45, 0), (width // 45, height - 1)], fill=0, width=line)
    elif cell == "line below":
        draw.line([(0, 0.965 * height), (width - 1, 0.965 * height)], fill=0, width=line)
    else:
        raise ValueError(f"unknown cell {cell!r}; cells: {', '.join(CELLS)}")
    return image


def rendered_accuracy(recognizer, images: np.ndarray, labels: np.ndarray, folder, rng: np.random.Generator) -> dict:
    """Accuracy on the raw arrays vs through image files rendered in every style (round robin).

    Writes one file per digit into `folder` and reads it back through `recognizer.predict`, as a
    user's files would be. Returns overall and per-style accuracies.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = recognizer.probabilities(images.astype(np.float32) / 255).argmax(axis=1)
    paths, styles = [], []
    for i, (digit, style) in enumerate(zip(images, (STYLES[i % len(STYLES)] for i in range(len(images))))):
        data = render_digit(digit, style, rng)
        path = folder / f"{i:05d}-{style}.{'jpg' if style == 'jpeg' else 'png'}"
        path.write_bytes(data)
        paths.append(path)
        styles.append(style)
    names = np.array(recognizer.class_names)
    got = np.array([p.digit if p.digit is not None else (p.top[0][0] if p.top else "") for p in recognizer.predict(paths)])
    truth = names[labels]
    correct = got == truth
    styles = np.array(styles)
    return {
        "raw_accuracy": float(np.mean(names[raw] == truth)),
        "file_accuracy": float(correct.mean()),
        "per_style": {s: float(correct[styles == s].mean()) for s in STYLES if (styles == s).any()},
    }


def number_accuracy(recognizer, images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator,
                    lengths: tuple[int, int] = (3, 10)) -> dict:
    """Whole-string and per-digit accuracy of `read` on `count` composed numbers of `lengths`
    (fewest, most) digits; and, to tell segmentation from recognition, the share of numbers whose
    digits the recogniser answers right one by one, each sure enough to be shown rather than a "?"
    as `read` shows it (the whole-string accuracy a perfect split gives)."""
    whole, alone, digits_right, digits_total = 0, 0, 0, 0
    for _ in range(count):
        k = int(rng.integers(lengths[0], lengths[1] + 1))
        idx = rng.integers(0, len(images), k)
        truth = "".join(recognizer.class_names[int(labels[i])] for i in idx)
        text = recognizer.read(compose_number([images[i] for i in idx], rng)).text
        whole += text == truth
        alone_digits = recognizer.predictions([str(i) for i in idx], list(images[idx].astype(np.float32) / 255))
        alone += all(p.digit == recognizer.class_names[int(labels[i])] for p, i in zip(alone_digits, idx))  # shown and right
        digits_right += max(0, len(truth) - _edit_distance(text, truth))
        digits_total += len(truth)
    return {"numbers": count, "lengths": list(lengths), "whole_string_accuracy": whole / count,
            "per_digit_accuracy": digits_right / digits_total, "digits_alone_all_right": alone / count}


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]
