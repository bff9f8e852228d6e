// The drawing page: draw on a canvas, send it to the API as a PNG, show what the network reads.
// Plain JavaScript with no libraries, so the page works offline and needs no build step.
"use strict";

const API = "/api/v1";
const SIZES = { digit: [280, 280], number: [720, 240] };
const LIVE_INTERVAL_MS = 200; // while drawing, at most one request per interval

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const answer = document.getElementById("answer");
const confidence = document.getElementById("confidence");
const message = document.getElementById("message");
const bars = document.getElementById("bars");
const digits = document.getElementById("digits");
const seenFigure = document.getElementById("seen-figure");
const hint = document.getElementById("hint");
const spoken = document.getElementById("spoken");

let mode = "digit";
let drawing = false;
let inked = false;
let last = null;
let sent = 0; // requests sent; only the answer to the latest is shown
let timer = null;
let inFlight = false; // a live request is on its way: the next waits for it, so none queue up
let changed = false; // ink added since the last request was sent
let pointer = null; // the one pointer drawing: a second finger on the canvas is ignored
let kind = null; // its type: "mouse", "pen" or "touch"
let before = null; // the canvas as it was before the stroke, and whether it was inked

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  drawing = false; // a palm resting on the pad while the pen taps Clear: its stroke is over too
  before = null; // and a pen coming down later restores nothing of what was cleared
  sent += 1; // answers still on their way are for a drawing that is gone
  answer.textContent = "–";
  answer.className = "";
  confidence.textContent = "";
  message.textContent = "";
  showBars(null);
  digits.replaceChildren();
  drawPixels(document.getElementById("seen"), null);
  document.body.dataset.state = "idle";
}

function setMode(next) {
  mode = next;
  [pad.width, pad.height] = SIZES[mode];
  hint.textContent = mode === "digit" ? "Draw a digit in the box." : "Write a number, digits side by side.";
  bars.hidden = mode !== "digit";
  seenFigure.hidden = mode !== "digit";
  digits.hidden = mode === "digit";
  clearPad();
}

// The pointer in canvas pixels, through the canvas's content box: getBoundingClientRect includes
// the border (and padding), so mapping through it put the ink a border's width off the pointer.
// The box is measured as drawn on screen: CSS zoom or a transform scales it, and its border and
// padding with it (layout sizes alone put the ink 70-140 px off under a zoom of 1.5-2).
function point(event) {
  const r = pad.getBoundingClientRect();
  const s = getComputedStyle(pad);
  const sx = r.width / pad.offsetWidth;
  const sy = r.height / pad.offsetHeight;
  const left = r.left + sx * (pad.clientLeft + parseFloat(s.paddingLeft));
  const top = r.top + sy * (pad.clientTop + parseFloat(s.paddingTop));
  const width = sx * (pad.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight));
  const height = sy * (pad.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom));
  return [(event.clientX - left) * (pad.width / width), (event.clientY - top) * (pad.height / height)];
}

function penWidth() {
  return pad.height / 14; // about MNIST's stroke width relative to the digit's height
}

function stroke(from, to) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = penWidth();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...from);
  ctx.lineTo(...to);
  ctx.stroke();
  inked = changed = true;
}

// A tap: a round dot as wide as the pen. A zero-length line draws nothing on a canvas, so a tap
// used to send a blank drawing.
function dot(at) {
  ctx.fillStyle = "#000";
  ctx.beginPath();
  ctx.arc(...at, penWidth() / 2, 0, 2 * Math.PI);
  ctx.fill();
  inked = changed = true;
}

// Before each stroke, the canvas as it was (`before`): a pen that comes down while a touch is
// drawing (a palm resting on a tablet came first) takes over, and the palm's ink is taken back.
pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return; // a right click
  if (drawing) {
    if (!(event.pointerType === "pen" && kind === "touch")) return; // a second finger
    if (before) {
      ctx.putImageData(before.image, 0, 0);
      inked = before.inked;
    }
  } else {
    before = { image: ctx.getImageData(0, 0, pad.width, pad.height), inked };
  }
  drawing = true;
  pointer = event.pointerId;
  kind = event.pointerType;
  try {
    pad.setPointerCapture(event.pointerId);
  } catch {} // a pointer the browser no longer knows: the stroke goes on without capture
  last = point(event);
  dot(last);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing || event.pointerId !== pointer) return;
  if (event.pointerType === "mouse" && !(event.buttons & 1)) return penUp(event); // the left button is up
  const p = point(event);
  stroke(last, p);
  last = p;
  if (!timer) timer = setTimeout(() => { timer = null; recognise(true); }, LIVE_INTERVAL_MS);
});
function penUp(event) {
  if (!drawing || event.pointerId !== pointer) return;
  drawing = false;
  clearTimeout(timer);
  timer = null;
  recognise(false);
}
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) pad.addEventListener(type, penUp);

// live: a provisional answer while the pen moves. At most one live request is on its way; while it
// is, the drawing goes on and the next is sent when it returns, so answers are never queued up
// behind each other (stale when they arrive). The answer to the request made when the pen lifts is
// final: any live answer still on its way after it is dropped.
async function recognise(live) {
  if (!inked || (live && (inFlight || !drawing))) return;
  const mine = ++sent;
  changed = false;
  if (live) inFlight = true;
  document.body.dataset.state = live ? "live" : "waiting";
  const path = mode === "digit" ? "/predict" : "/read";
  let body;
  let ok = false;
  try {
    const response = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: pad.toDataURL("image/png") }),
    });
    const text = await response.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    // An answer is an object of the shape asked for; anything else (a proxy's or a captive portal's
    // page, null) is an error that says what came back.
    ok = response.ok && body !== null && typeof body === "object" &&
      (mode === "digit" ? Array.isArray(body.probabilities) : Array.isArray(body.digits));
    if (body === null || typeof body !== "object") body = {};
    if (!ok && body.detail == null) {
      body.detail = body.message ?? `The server answered ${response.status} ${response.statusText} with no answer this page understands.`;
    }
  } catch (error) {
    body = { detail: "The server cannot be reached: " + error };
  }
  if (live) {
    inFlight = false;
    if (drawing && changed && !timer) timer = setTimeout(() => { timer = null; recognise(true); }, LIVE_INTERVAL_MS);
  }
  if (mine !== sent) return; // a newer drawing has been sent since
  if (!ok) { // nothing of an earlier answer stays beside the error: it was for another drawing
    answer.textContent = "–";
    answer.className = "";
    confidence.textContent = "";
    showBars(null);
    digits.replaceChildren();
    drawPixels(document.getElementById("seen"), null);
    message.textContent = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } else if (mode === "digit") {
    showPrediction(body);
  } else {
    showReading(body);
  }
  answer.classList.toggle("live", live);
  document.body.dataset.state = live ? "live" : "done";
  // A screen reader hears the final answer once, not every live update of the whole panel.
  if (!live) spoken.textContent = ok ? `The network reads ${answer.textContent} ${confidence.textContent}.` : message.textContent;
}

function showPrediction(p) {
  answer.textContent = p.digit ?? "?";
  answer.className = p.status === "ok" ? "" : "unsure";
  confidence.textContent = `${(100 * p.probability).toFixed(1)}%`;
  message.textContent = p.message;
  showBars(p);
  drawPixels(document.getElementById("seen"), p.prepared);
}

function showReading(r) {
  answer.textContent = r.text;
  answer.className = r.text.includes("?") ? "unsure" : "";
  const least = Math.min(...r.digits.map((d) => d.probability));
  confidence.textContent = r.digits.length ? `least sure digit ${(100 * least).toFixed(1)}%` : "";
  message.textContent = "";
  digits.replaceChildren(...r.digits.map((d) => {
    const card = document.createElement("div");
    card.className = "digit-card";
    const seen = document.createElement("canvas");
    seen.width = seen.height = 28;
    drawPixels(seen, d.prepared);
    const b = document.createElement("b");
    b.textContent = d.digit ?? "?";
    card.append(seen, b, `${(100 * d.probability).toFixed(0)}%`);
    return card;
  }));
}

function showBars(p) {
  if (!p) {
    bars.replaceChildren();
    return;
  }
  const best = p.probabilities.indexOf(Math.max(...p.probabilities));
  bars.replaceChildren(...p.classes.flatMap((name, k) => {
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = k === best ? "bar best" : "bar";
    const fill = document.createElement("div");
    fill.style.width = `${(100 * p.probabilities[k]).toFixed(1)}%`;
    bar.append(fill);
    const percent = `${(100 * p.probabilities[k]).toFixed(1)}%`;
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", `probability of ${name}`);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", (100 * p.probabilities[k]).toFixed(1));
    bar.setAttribute("aria-valuetext", percent);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = percent;
    return [label, bar, pct];
  }));
}

function drawPixels(canvas, pixels) {
  const c = canvas.getContext("2d");
  const image = c.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const v = pixels ? pixels[Math.floor(i / 28)][i % 28] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  c.putImageData(image, 0, 0);
}

document.getElementById("clear").addEventListener("click", clearPad);
for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", () => setMode(radio.value));
}

fetch(API + "/model").then((r) => r.json()).then((m) => {
  const testSet = m.dataset === "mnist+pen" ? "MNIST's test set" : "the test set"; // the reader is tested on MNIST's
  const accuracy = m.test_accuracy == null ? "" : `, ${(100 * m.test_accuracy).toFixed(2)}% on ${testSet}`;
  document.getElementById("model-facts").textContent =
    `Model ${m.name}: ${m.preset ?? "a Keras model"} trained on ${m.dataset}${accuracy}.` +
    (m.shipped ? " Serve one of your runs with digitlab serve --model RUN_FOLDER." : "");
}).catch(() => {});

setMode("digit");
