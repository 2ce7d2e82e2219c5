// Runs an ONNX model with onnxruntime-node, an ONNX Runtime binding
// independent of the Go one, on raw float32 items read from a file, and
// writes the outputs as raw float32. The inference tests compare against
// it; the frame benchmark times it on the same tiles.
//
//   node run.js MODEL INPUT_NAME OUTPUT_NAME ITEM_SHAPE IN.f32 OUT.f32 [REPEAT]
//
// ITEM_SHAPE is comma separated, e.g. 1,3,360,640; IN.f32 holds one or more
// items of that shape, run one at a time, the whole set REPEAT times (the
// first pass is a warm-up and not timed when REPEAT > 1). Prints JSON with
// the seconds per pass.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inName, outName, shapeArg, inPath, outPath, repeatArg] = process.argv.slice(2);
  if (!outPath) throw new Error('usage: node run.js MODEL INPUT_NAME OUTPUT_NAME ITEM_SHAPE IN.f32 OUT.f32 [REPEAT]');
  const shape = shapeArg.split(',').map(Number);
  const itemLen = shape.reduce((a, b) => a * b, 1);
  const buf = fs.readFileSync(inPath);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (all.length % itemLen !== 0) throw new Error(`${inPath} holds ${all.length} floats, not a whole number of ${shape} items`);
  const items = all.length / itemLen;
  const repeat = Math.max(1, Number(repeatArg || 1));
  const session = await ort.InferenceSession.create(model);
  const outputs = [];
  let timed = 0;
  let start = 0;
  for (let pass = 0; pass < repeat; pass++) {
    if (pass === 1) start = process.hrtime.bigint();
    for (let i = 0; i < items; i++) {
      const x = new ort.Tensor('float32', all.subarray(i * itemLen, (i + 1) * itemLen), shape);
      const res = await session.run({ [inName]: x });
      if (pass === repeat - 1) outputs.push(Buffer.from(res[outName].data.buffer, res[outName].data.byteOffset, res[outName].data.byteLength));
    }
    if (pass >= 1) timed++;
  }
  const seconds = timed ? Number(process.hrtime.bigint() - start) / 1e9 / timed : null;
  fs.writeFileSync(outPath, Buffer.concat(outputs));
  process.stdout.write(JSON.stringify({ items, passes: timed, seconds_per_pass: seconds, version: ort.env.versions.common }) + '\n');
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });
