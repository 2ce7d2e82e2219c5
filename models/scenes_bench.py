#!/usr/bin/env python3
"""Compares the built-in interpolators with ffmpeg's minterpolate on
synthetic scenes none of them was tuned on, by kind of scene.

Run with Debian's python3 (python3-torch, numpy, PIL) and ffmpeg, as
`make scenes`:

    /usr/bin/python3 models/scenes_bench.py [--scenes N] [--width W] [--height H]

The scenes are train_flow3.py's (photographs and procedural textures, a
background with its own affine motion, up to four objects, non-rigid
bending, particles, brightness changes, low contrast, sensor noise), drawn
from a seed of their own so that none is a training or validation scene
of flow3, and rendered at 512x384 by default. Each is rendered at s = -1,
0, 1/2, 1 and 2: minterpolate, which looks at the frames around a pair,
gets the four outer ones (as bench/interp gives it the whole clip); the
models get the frames at 0 and 1 only; both recreate s=1/2, which is the
truth. The models run in torch (the graphs gen_models.py exports);
minterpolate with bench/interp's settings, through YUV 4:4:4.

It prints, for all scenes and for each kind (a brightness change, none,
particles, a non-rigid background, large background motion), each
method's mean PSNR against minterpolate's and on how many scenes it is
behind. Every figure is deterministic: the scenes are seeded, and
minterpolate and the models run the same on the same software.
"""

import argparse
import math
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_models as G  # noqa: E402
import train_flow3 as T  # noqa: E402

SEED = T.SEED + 1   # not the training scenes' seed
TIMES = (-1.0, 0.0, 0.5, 1.0, 2.0)
MINTERPOLATE = "format=yuv444p,minterpolate=fps=2:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1,format=rgb24"


def make(index):
    """Scene index at TIMES, as a camera sees it: (kinds, frames uint8
    [5,3,H,W]); see train_flow3.scene."""
    frame, _, kinds = T.scene(SEED, index)
    frames = torch.stack([frame(s) for s in TIMES])
    return kinds, T.camera(np.random.default_rng([SEED, index, 7]), frames)


def minterpolate(frames):
    """minterpolate's frame midway between frames[1] and frames[2] of
    frames (uint8 [4,3,H,W]), uint8 [3,H,W]."""
    h, w = frames.shape[2], frames.shape[3]
    seq = torch.cat([frames, frames[-1:]])  # it emits a frame once it has seen the next
    raw = seq.permute(0, 2, 3, 1).contiguous().numpy().tobytes()
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-s", "%dx%d" % (w, h), "-framerate", "1", "-i", "pipe:0", "-vf", MINTERPOLATE,
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                         input=raw, capture_output=True, check=True).stdout
    got = torch.from_numpy(np.frombuffer(out, np.uint8).reshape(-1, h, w, 3).copy()).permute(0, 3, 1, 2)
    # Input k comes out as frame 2k; the one between inputs 1 and 2 is 3.
    if psnr(got[2], frames[1]) < 40:
        raise SystemExit("minterpolate's output is not aligned with its input")
    return got[3]


def psnr(a, b):
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=160)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--photos", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                     "img2vid", T.PHOTO_PACKAGE))
    args = ap.parse_args()
    torch.set_num_threads(1)
    T.H, T.W = args.height, args.width
    T._photos[:] = T.load_photos(T.photo_dir(args.photos))
    models = []
    for name, model, _ in G.MODELS:
        if name == "blend":
            continue
        if isinstance(model, G.Flow3):
            model.load_weights(os.path.join(HERE, name + ".weights"))
        models.append((name, model.eval()))
    rows = []
    for i in range(args.scenes):
        kinds, frames = make(i)
        truth = frames[2]
        row = dict(kinds, minterpolate=psnr(minterpolate(frames[[0, 1, 3, 4]]), truth))
        f = frames.float() / 255
        for name, model in models:
            with torch.no_grad():
                out = model(f[1:2], f[3:4], torch.tensor([0.5]))[0]
            row[name] = psnr(torch.round(torch.clamp(out, 0, 1) * 255), truth)
        rows.append(row)
    groups = [
        ("all", rows),
        ("brightness change", [r for r in rows if r["light"]]),
        ("no brightness change", [r for r in rows if not r["light"]]),
        ("particles", [r for r in rows if r["particles"]]),
        ("non-rigid background", [r for r in rows if r["bending"]]),
        ("background moves 30+ px", [r for r in rows if r["background"] >= 30]),
    ]
    print("%d scenes at %dx%d; each model's mean PSNR minus minterpolate's (scenes where it is behind)"
          % (args.scenes, args.width, args.height))
    print("%-24s %6s %14s" % ("scenes", "count", "minterpolate") + "".join("%16s" % n for n, _ in models))
    for label, rs in groups:
        if not rs:
            continue
        line = "%-24s %6d %11.2f dB" % (label, len(rs), np.mean([r["minterpolate"] for r in rs]))
        for name, _ in models:
            d = np.array([r[name] - r["minterpolate"] for r in rs])
            line += "%16s" % ("%+.2f (%d)" % (d.mean(), int(np.sum(d < 0))))
        print(line)


if __name__ == "__main__":
    main()
