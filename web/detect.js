// The detections of a job run with a detect model, under its video: a
// table per class, a chart of how many of each class are on each frame
// over time (a canvas, drawn here), and the downloads. Loaded before
// app.js, which calls showDetections when a job is done.
"use strict";

// The colours the server draws each class's boxes in (annotate.palette),
// so a line in the chart matches the boxes in the video.
const detectPalette = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6",
  "#d2f53c", "#fabed4", "#008080", "#dcbeff", "#aa6e28", "#fffac8", "#800000", "#aaffc3",
  "#808000", "#ffd7b4", "#000080", "#ffffff"];

// showDetections fills the detections box from a finished job, or hides
// it when the job found nothing because it looked for nothing.
async function showDetections(view) {
  const box = document.getElementById("detections");
  const r = view.result;
  if (!r || !r.detections || !view.detections) {
    box.hidden = true;
    return;
  }
  const rows = box.querySelector("#det-summary tbody");
  rows.replaceChildren();
  for (const c of r.detections.classes) {
    const tr = document.createElement("tr");
    for (const v of [c.class, c.frames, c.most]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.append(td);
    }
    rows.append(tr);
  }
  if (!r.detections.classes.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.textContent = `${r.detections.model} found nothing.`;
    tr.append(td);
    rows.append(tr);
  }
  document.getElementById("det-csv").href = `${view.detections}?format=csv&download=1`;
  document.getElementById("det-jsonl").href = `${view.detections}?download=1`;
  box.hidden = false;
  const canvas = document.getElementById("det-chart");
  try {
    const resp = await fetch(view.detections, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
    drawDetectionChart(canvas, await resp.text(), r.frames, r.fps);
  } catch (err) {
    canvas.hidden = true;
    document.getElementById("det-caption").textContent = `The chart could not be drawn: ${err.message}.`;
  }
}

// drawDetectionChart draws one line per class: its count on each of the
// video's frames, time along, count up, with the most at once marked.
function drawDetectionChart(canvas, jsonl, frames, fps) {
  const counts = new Map(); // class_id -> { name, per frame counts }
  for (const line of jsonl.split("\n")) {
    if (!line.trim()) continue;
    const d = JSON.parse(line);
    if (!counts.has(d.class_id)) counts.set(d.class_id, { name: d.class, n: new Array(frames).fill(0) });
    if (d.frame < frames) counts.get(d.class_id).n[d.frame]++;
  }
  canvas.hidden = false;
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || 640;
  const cssHeight = 160;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssWidth, cssHeight);
  const left = 28, right = 8, top = 20, bottom = 22;
  const w = cssWidth - left - right, h = cssHeight - top - bottom;
  let most = 1;
  for (const c of counts.values()) most = Math.max(most, ...c.n);
  // Axes and labels, in the page's muted colour.
  g.strokeStyle = g.fillStyle = "#57606a";
  g.lineWidth = 1;
  g.font = "11px system-ui, sans-serif";
  g.beginPath();
  g.moveTo(left, top);
  g.lineTo(left, top + h);
  g.lineTo(left + w, top + h);
  g.stroke();
  g.textAlign = "right";
  g.fillText(String(most), left - 4, top + 9);
  g.fillText("0", left - 4, top + h);
  g.textAlign = "left";
  g.fillText("0 s", left, top + h + 14);
  g.textAlign = "right";
  g.fillText(`${(frames / fps).toFixed(1)} s`, left + w, top + h + 14);
  const x = (i) => left + (frames > 1 ? (i / (frames - 1)) * w : w / 2);
  const y = (n) => top + h - (n / most) * h;
  // Each class as a step line: a count holds until the next frame.
  const legend = [];
  const keys = [];
  for (const [id, c] of [...counts.entries()].sort((a, b) => a[0] - b[0])) {
    const colour = detectPalette[((id % detectPalette.length) + detectPalette.length) % detectPalette.length];
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    c.n.forEach((n, i) => {
      if (i === 0) g.moveTo(x(0), y(n));
      else {
        g.lineTo(x(i), y(c.n[i - 1]));
        g.lineTo(x(i), y(n));
      }
    });
    g.stroke();
    legend.push(`${c.name}: up to ${Math.max(...c.n)}`);
    keys.push({ name: c.name, colour });
  }
  // The key, top right: a swatch in each class's colour, then its name.
  g.font = "12px system-ui, sans-serif";
  g.textAlign = "left";
  let kx = left + w;
  for (const k of keys.reverse()) {
    kx -= g.measureText(k.name).width + 22;
    g.fillStyle = k.colour;
    g.fillRect(kx, 4, 10, 10);
    g.strokeStyle = "#57606a";
    g.lineWidth = 1;
    g.strokeRect(kx + 0.5, 4.5, 9, 9);
    g.fillStyle = "#1b1f24";
    g.fillText(k.name, kx + 14, 13);
  }
  canvas.setAttribute("aria-label", legend.length ? `Objects per frame over time. ${legend.join("; ")}.` : "No objects were found.");
}
