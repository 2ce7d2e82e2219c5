#!/usr/bin/env python3
"""Builds img2vid's built-in interpolation models and their manifests.

Run with Debian's python3 (python3-torch 1.13, python3-onnx 1.12, numpy):

    /usr/bin/python3 models/gen_models.py

It rewrites, deterministically, in the folder of this script:
  blend.onnx, blend.json   plain cross-fade (1-t)*frame0 + t*frame1, the baseline
  testdata/                a small input pair and the torch modules' outputs,
                           which the Go tests compare the committed graphs with

Every model takes frame0, frame1 (float32 [1,3,H,W], RGB in [0,1]) and t
(float32 [1]) and returns frame (float32 [1,3,H,W] in [0,1]), for any H and W
that are multiples of the manifest's "multiple".
"""

import hashlib
import io
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 16  # GridSample arrived in opset 16; the CUDA provider runs it too.


class Blend(torch.nn.Module):
    """Cross-fade: what a video editor's dissolve does, motion ignored."""

    multiple = 1

    def forward(self, frame0, frame1, t):
        t = t.reshape(1, 1, 1, 1)
        return torch.clamp((1 - t) * frame0 + t * frame1, 0, 1)


MODELS = [
    ("blend", Blend(),
     "Cross-fade between the two frames; ignores motion (the baseline)."),
]


def export(module, path):
    """Exports module to ONNX with dynamic height and width, then re-serialises
    it without the exporter's doc strings so that two runs give the same bytes."""
    h, w = 64, 96
    args = (torch.rand(1, 3, h, w), torch.rand(1, 3, h, w), torch.tensor([0.5]))
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            module, args, buf, opset_version=OPSET,
            input_names=["frame0", "frame1", "t"], output_names=["frame"],
            dynamic_axes={
                "frame0": {2: "height", 3: "width"},
                "frame1": {2: "height", 3: "width"},
                "frame": {2: "height", 3: "width"},
            },
            do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    for node in model.graph.node:
        node.doc_string = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def write_manifest(name, description, multiple, sha):
    manifest = {
        "name": name, "kind": "interpolate", "file": name + ".onnx",
        "description": description,
        "inputs": ["frame0", "frame1", "t"], "outputs": ["frame"],
        "layout": "NCHW", "channels": "RGB", "range": [0, 1],
        "multiple": multiple, "sha256": sha,
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def texture(h, w, rng):
    """A smooth random RGB texture: a sum of sinusoids of several scales."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((3, h, w))
    for c in range(3):
        for _ in range(6):
            fx, fy = rng.uniform(-0.25, 0.25, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            img[c] += np.sin(2 * np.pi * (fx * x + fy * y) / 4 + phase)
    img = (img - img.min()) / (img.max() - img.min())
    return img


def write_reference(models):
    """Writes testdata/: an input pair made of a texture seen at two shifts,
    and each module's outputs for a few t, as raw little-endian float32."""
    d = os.path.join(HERE, "testdata")
    os.makedirs(d, exist_ok=True)
    h, w = 64, 96
    rng = np.random.default_rng(7)
    big = texture(h + 16, w + 16, rng)
    f0 = big[:, 8:8 + h, 8:8 + w]
    f1 = big[:, 5:5 + h, 10:10 + w]  # moved by (+3, -2) pixels
    f0 = torch.tensor(f0, dtype=torch.float32).unsqueeze(0)
    f1 = torch.tensor(f1, dtype=torch.float32).unsqueeze(0)
    index = {"height": h, "width": w, "frame0": "frame0.f32", "frame1": "frame1.f32",
             "outputs": []}
    f0.numpy().astype("<f4").tofile(os.path.join(d, "frame0.f32"))
    f1.numpy().astype("<f4").tofile(os.path.join(d, "frame1.f32"))
    for name, module, _ in models:
        for t in (0.25, 0.5, 0.75):
            with torch.no_grad():
                out = module(f0, f1, torch.tensor([t], dtype=torch.float32))
            file = "%s_t%03d.f32" % (name, round(t * 100))
            out.numpy().astype("<f4").tofile(os.path.join(d, file))
            index["outputs"].append({"model": name, "t": t, "file": file})
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def main():
    torch.manual_seed(0)
    for name, module, description in MODELS:
        module.eval()
        sha = export(module, os.path.join(HERE, name + ".onnx"))
        write_manifest(name, description, module.multiple, sha)
        print("%s.onnx sha256 %s" % (name, sha), file=sys.stderr)
    write_reference(MODELS)


if __name__ == "__main__":
    main()
