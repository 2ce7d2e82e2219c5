// YOLOX detection done a second way: preprocessing, decoding and
// non-maximum suppression written from the YOLOX demo's steps (YOLOX
// preproc, demo_postprocess, multiclass_nms class-agnostic) in JavaScript,
// the model run by onnxruntime-node. The Go detector is compared with it.
//
//   node detect.js MODEL IMAGE.rgb WIDTH HEIGHT SCORE_THR NMS_THR
//
// IMAGE.rgb is WIDTH x HEIGHT 8-bit RGB, row by row. Prints a JSON array of
// {class_id, score, box: [x1, y1, x2, y2]} in image pixels, best first.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// preproc: letterbox at the top-left of a size x size canvas of 114,
// resized with OpenCV's INTER_LINEAR rule (sample at pixel centres, no
// antialiasing) and rounded to 8 bits, channels B, G, R, values 0..255.
function preproc(rgb, w, h, size) {
  const r = Math.min(size / h, size / w);
  const nw = Math.trunc(w * r), nh = Math.trunc(h * r);
  const out = new Float32Array(3 * size * size).fill(114);
  const fx = w / nw, fy = h / nh;
  for (let y = 0; y < nh; y++) {
    let sy = (y + 0.5) * fy - 0.5;
    if (sy < 0) sy = 0;
    let y0 = Math.floor(sy), dy = sy - y0;
    if (y0 >= h - 1) { y0 = h - 1; dy = 0; }
    const y1 = Math.min(y0 + 1, h - 1);
    for (let x = 0; x < nw; x++) {
      let sx = (x + 0.5) * fx - 0.5;
      if (sx < 0) sx = 0;
      let x0 = Math.floor(sx), dx = sx - x0;
      if (x0 >= w - 1) { x0 = w - 1; dx = 0; }
      const x1 = Math.min(x0 + 1, w - 1);
      for (let c = 0; c < 3; c++) {
        const p = (yy, xx) => rgb[(yy * w + xx) * 3 + c];
        const top = p(y0, x0) * (1 - dx) + p(y0, x1) * dx;
        const bot = p(y1, x0) * (1 - dx) + p(y1, x1) * dx;
        const v = Math.floor(top * (1 - dy) + bot * dy + 0.5);
        out[(2 - c) * size * size + y * size + x] = v; // RGB -> BGR planes
      }
    }
  }
  return { tensor: out, r };
}

function iou(a, b) {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

async function main() {
  const [model, rgbPath, wArg, hArg, scoreArg, nmsArg] = process.argv.slice(2);
  if (!nmsArg) throw new Error('usage: node detect.js MODEL IMAGE.rgb WIDTH HEIGHT SCORE_THR NMS_THR');
  const w = Number(wArg), h = Number(hArg), scoreThr = Number(scoreArg), nmsThr = Number(nmsArg);
  const rgb = fs.readFileSync(rgbPath);
  const session = await ort.InferenceSession.create(model);
  const size = 416;
  const { tensor, r } = preproc(rgb, w, h, size);
  const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', tensor, [1, 3, size, size]) });
  const out = res[session.outputNames[0]];
  const [, rows, cols] = out.dims;
  const data = out.data;
  // demo_postprocess: grids and expanded strides, level by level.
  const cands = [];
  let row = 0;
  for (const s of [8, 16, 32]) {
    const g = size / s;
    for (let gy = 0; gy < g; gy++) {
      for (let gx = 0; gx < g; gx++, row++) {
        const v = data.subarray(row * cols, (row + 1) * cols);
        let best = 0, cls = 0;
        for (let c = 5; c < cols; c++) if (v[c] > best) { best = v[c]; cls = c - 5; }
        const score = v[4] * best;
        if (!(score >= scoreThr)) continue;
        const cx = (v[0] + gx) * s, cy = (v[1] + gy) * s;
        const bw = Math.exp(v[2]) * s, bh = Math.exp(v[3]) * s;
        cands.push({ class_id: cls, score, box: [(cx - bw / 2) / r, (cy - bh / 2) / r, (cx + bw / 2) / r, (cy + bh / 2) / r] });
      }
    }
  }
  if (row !== rows) throw new Error(`decoded ${row} rows, the model gave ${rows}`);
  cands.sort((a, b) => b.score - a.score);
  const keep = [];
  for (const c of cands) {
    if (keep.every((k) => iou(k.box, c.box) <= nmsThr)) keep.push(c);
  }
  for (const k of keep) {
    k.box = k.box.map((v, i) => Math.min(Math.max(v, 0), i % 2 === 0 ? w : h));
  }
  process.stdout.write(JSON.stringify(keep) + '\n');
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
