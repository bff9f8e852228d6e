"""A pencil's faint strokes in `read`'s hysteresis: they stay part of the digit. Kept from a fix for
ruled paper that was tried and taken back on 2026-12-07 (docs/recognition.md): its first version
cut these strokes off."""

from PIL import Image


def test_a_pencil_digits_own_faint_bar_or_tail_is_no_paper_line():
    """Taken for paper lines by a fix tried on 2026-12-07, a pencil "7"'s faint bar, a "9"'s faint
    tail and a "4"'s fading stem were cut off, and read "1", "0" and "not a digit"."""
    from PIL import ImageDraw, ImageFilter

    from digitlab.recognize import Recognizer

    def drawn(lines):
        image = Image.new("L", (300, 300), 250)
        for points, grey in lines:
            ImageDraw.Draw(image).line(points, fill=grey, width=12)
        return image.filter(ImageFilter.GaussianBlur(1.2))

    dark, faint = 30, 165  # faint: inside the band the number's hysteresis keeps
    reader = Recognizer.load("reader")
    seven = drawn([([(40, 60), (250, 60)], faint), ([(250, 60), (150, 270)], dark)])
    four = drawn([([(60, 30), (40, 170), (220, 170)], dark), ([(180, 30), (180, 170)], dark), ([(180, 170), (180, 285)], faint)])
    nine = Image.new("L", (300, 300), 250)
    ImageDraw.Draw(nine).ellipse([(90, 20), (200, 120)], outline=dark, width=12)
    ImageDraw.Draw(nine).line([(196, 70), (196, 290)], fill=faint, width=12)
    for image, text in ((seven, "7"), (four, "4"), (nine.filter(ImageFilter.GaussianBlur(1.2)), "9")):
        assert reader.read(image).text == text
