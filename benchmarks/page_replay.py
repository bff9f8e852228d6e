"""Pen digits of unseen writers drawn on the real draw page, with the mouse, in Chromium.

    python benchmarks/page_replay.py reader                      # the shipped reader
    python benchmarks/page_replay.py reader runs/<mlp run> --limit 100

`benchmarks/handwriting.py` draws `pen-digits/dev.json` the way the page draws (a Pillow copy of its
canvas); this script goes through the page itself, as issue 25 asks ("through the page, mouse
replay in Chromium"): `digitlab serve --model RUN` on 127.0.0.1, Debian's Chromium through
Playwright, and for each of the 386 dev digits: clear, then the digit's pen strokes replayed as
mouse drags (placed as handwriting.py places them: centred, the longer side 70% of the canvas),
the page's own canvas, pen, live answers and final request, then the answer the page shows.

Printed per run: the share of digits whose answer on the page is the label (a digit under the
threshold shows "?", and counts as wrong), the share whose best guess (the highlighted bar) is,
by writer site, and the seconds. Needs `pip install playwright` and `apt install chromium`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

from digitlab.data.pen import load_pen_digits

HEIGHT_SHARE = 0.7  # as handwriting.py's "page" style (draw_strokes' default)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "digitlab", "serve", "--model", run, "--port", str(port),
                                "--timeout", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"digitlab serve --model {run} did not start: {process.stderr.read()[-2000:]}")
            time.sleep(0.2)


def wait_done(page, timeout_s: float = 60.0) -> None:
    """Until the page's final answer is shown (page.evaluate: the page's CSP forbids eval)."""
    deadline = time.monotonic() + timeout_s
    while page.evaluate("document.body.dataset.state") != "done":
        if time.monotonic() > deadline:
            raise RuntimeError("the page gave no final answer")
        time.sleep(0.01)


def content_box(page) -> dict:
    """The canvas's drawing area in page pixels (inside its border) and its size in canvas pixels."""
    return page.evaluate("""(() => {
        const pad = document.getElementById('pad'), r = pad.getBoundingClientRect(), s = getComputedStyle(pad);
        const left = r.left + pad.clientLeft + parseFloat(s.paddingLeft), top = r.top + pad.clientTop + parseFloat(s.paddingTop);
        return {left, top, width: pad.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight),
                height: pad.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom),
                canvas_width: pad.width, canvas_height: pad.height};
    })()""")


def replay(page, box: dict, strokes) -> None:
    """The strokes as mouse drags on the page's canvas, placed as draw_strokes places them."""
    points = [p for stroke in strokes for p in stroke]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mid = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    scale = HEIGHT_SHARE * box["canvas_height"]  # canvas pixels per unit
    sx, sy = box["width"] / box["canvas_width"], box["height"] / box["canvas_height"]

    def at(p):
        return (box["left"] + ((p[0] - mid[0]) * scale + box["canvas_width"] / 2) * sx,
                box["top"] + ((p[1] - mid[1]) * scale + box["canvas_height"] / 2) * sy)

    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for p in stroke[1:]:
            page.mouse.move(*at(p))
        page.mouse.up()


def measure(run: str, digits, browser) -> dict:
    process, url = start_server(run)
    try:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#pad")
        box = content_box(page)
        started = time.perf_counter()
        shown, guessed, wrong, by_site = [], [], [], defaultdict(list)
        for d in digits:
            page.click("#clear")
            replay(page, box, d.strokes)
            wait_done(page)
            answer = page.inner_text("#answer").strip()
            best = page.get_attribute(".bar.best", "aria-label") or ""
            shown.append(answer == str(d.label))
            guessed.append(best.removeprefix("probability of ") == str(d.label))
            by_site[d.site].append(guessed[-1])
            if not guessed[-1]:
                wrong.append({"index": len(shown) - 1, "site": d.site, "label": d.label, "shown": answer,
                              "best": best.removeprefix("probability of ")})
        facts = page.inner_text("#model-facts")
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"run": run, "model": facts.strip().split(". ")[0], "digits": len(digits),
            "answer_right": sum(shown) / len(shown), "best_guess_right": sum(guessed) / len(guessed),
            "by_site": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_site.items())}, "wrong": wrong,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, or 'reader' for the shipped reader")
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev digits")
    parser.add_argument("--data-dir", default=os.environ.get("DIGITLAB_DATA"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    digits = load_pen_digits("dev", args.data_dir)[: args.limit]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")  # Debian's: no download here
        for run in args.runs:
            r = measure(run, digits, browser)
            if args.json:
                print(json.dumps(r))
            else:
                print(f"{r['run']}: {r['digits']} dev digits drawn on the page in {r['seconds']} s; "
                      f"answer shown right {r['answer_right']:.1%}, best guess right {r['best_guess_right']:.1%}; "
                      "by site " + ", ".join(f"{k} {v:.1%}" for k, v in r["by_site"].items()) + "; wrong (dev index, "
                      "label -> best guess): " + ", ".join(f"#{w['index']} {w['label']} -> {w['best']}" for w in r["wrong"]))
        browser.close()


if __name__ == "__main__":
    main()
