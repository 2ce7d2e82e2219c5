#!/usr/bin/env python3
"""Trains flow3's fusion network (see Flow3 in gen_models.py) on synthetic
scenes made here, and writes its weights to models/flow3.weights.

Run with Debian's python3 (python3-torch 1.13, numpy, PIL), as `make train`:

    /usr/bin/python3 models/train_flow3.py [--steps N] [--out PATH] [--photos DIR]

Everything is seeded and runs on one CPU thread with deterministic
kernels, so a run on the same software gives the same weights. No camera
footage is used: each training example is a triplet of frames rendered
from a scene whose textures are, 4 in 10, procedural (sinusoids of many
scales plus flat-coloured shapes, so that there are both smooth areas
and sharp edges) and, 6 in 10, crops of ten public-domain or CC0
photographs from Debian's python3-skimage package (see PHOTOS: they are
not in this repository; if the package is not installed, the script
fetches it with apt-get download and unpacks it with dpkg -x into
--photos, by default ~/.cache/img2vid/python3-skimage, and checks each
image's sha256), with

- a background that moves by its own affine motion (translation up to 80
  pixels, rotation, zoom) and, in some scenes, a smooth non-rigid
  deformation;
- up to four objects of random blob shapes, each with its own affine
  motion, in front of it and of each other, covering and uncovering what
  is behind, half of them also changing shape;
- in some scenes drifting particles, and a brightness change over time;
- in 6 scenes in 10 a lower contrast (down to 0.15) and a brightness
  offset, in half of them sensor noise drawn anew for each frame.

The scene is a function of time s, rendered at s=0, s=t and s=1, so the
middle frame is exact truth for any t (half of the examples at t=0.5,
the rest uniform in 0.05..0.95). flow2's estimator, which the network
does not change, runs once per example before training; only the
network's 20k weights are trained, against the squared error of the
frame at t.
"""

import argparse
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_models import Flow3  # noqa: E402

H, W = 192, 256     # frame size of the examples (multiples of 32)
SEED = 20261130
TRAIN = 1200        # training examples
VALID = 96          # examples held out to report progress
BATCH = 8


def waves(rng, h, w, n, shortest, longest, scale):
    """A sum of n sinusoids in random directions, wavelengths log-uniform
    between shortest and longest, amplitude rising with wavelength (as in
    photographs), scaled to about scale."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for _ in range(n):
        length = shortest * (longest / shortest) ** rng.uniform()
        angle = rng.uniform(0, 2 * np.pi)
        k = 2 * np.pi / length
        amp = math.sqrt(length)
        out += amp * np.sin(k * np.cos(angle) * x + k * np.sin(angle) * y + rng.uniform(0, 2 * np.pi))
        total += amp
    return out * (scale / total)


# Photographs some textures are cut from: the sample images of Debian's
# python3-skimage package (scikit-image's data folder), each with the
# licence scikit-image's documentation (skimage/data/_fetchers.py) states,
# and its sha256, so that a different file fails rather than changing
# the weights. They are not in this repository: photo_dir finds them.
PHOTOS = [
    ("astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),  # NASA, public domain
    ("coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),  # Rachel Michetti, CC0
    ("chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),  # Stefan van der Walt, CC0
    ("rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),  # SpaceX, public domain
    ("hubble_deep_field.jpg", "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"),  # NASA, public domain
    ("retina.jpg", "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"),  # M. Haggstrom, CC0
    ("camera.png", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),  # Lav Varshney, CC0
    ("brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),  # CC0Textures, CC0
    ("grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),  # DeviantArt linolafett, CC0
    ("gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),  # CC0Textures, CC0
]
PHOTO_PACKAGE = "python3-skimage"
INSTALLED = "/usr/lib/python3/dist-packages/skimage/data"


def photo_dir(cache):
    """The folder holding PHOTOS: the installed package's, else cache,
    where the package is unpacked (apt-get download, dpkg -x) the first
    time."""
    if all(os.path.exists(os.path.join(INSTALLED, n)) for n, _ in PHOTOS):
        return INSTALLED
    data = os.path.join(cache, "usr/lib/python3/dist-packages/skimage/data")
    if not all(os.path.exists(os.path.join(data, n)) for n, _ in PHOTOS):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", PHOTO_PACKAGE], cwd=tmp, check=True)
            debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if len(debs) != 1:
                raise SystemExit("apt-get download %s gave %s, expected one .deb" % (PHOTO_PACKAGE, debs))
            subprocess.run(["dpkg", "-x", os.path.join(tmp, debs[0]), cache], check=True)
    return data


def load_photos(folder):
    """PHOTOS as float32 [C,h,w] tensors in [0,1] (C is 1 for the grey
    ones), each checked against its sha256."""
    out = []
    for name, sha in PHOTOS:
        path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            got = hashlib.sha256(fh.read()).hexdigest()
        if got != sha:
            raise SystemExit("%s: sha256 %s, expected %s (another version of %s?)" % (path, got, sha, PHOTO_PACKAGE))
        im = Image.open(path)
        a = np.asarray(im if im.mode == "L" else im.convert("RGB")).astype(np.float32) / 255
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        out.append(torch.from_numpy(np.ascontiguousarray(a)))
    return out


_photos = []  # load_photos' answer, set by main before rendering


def photo(rng, h, w):
    """An RGB crop [3,h,w] of one of the photographs, resized by a random
    factor (never below the crop's size), mirrored in half of them; the
    grey ones tinted."""
    img = _photos[rng.integers(len(_photos))]
    ih, iw = img.shape[1], img.shape[2]
    least = max(h / ih, w / iw)  # the factor at which it just covers the crop
    # Up to twice that where that is over 0.5; else 0.5-1.5, so that a
    # large photograph's detail is seen at its own scale or near it.
    s = least * float(rng.uniform(1, 2)) if least > 0.5 else float(rng.uniform(0.5, 1.5))
    nh, nw = max(h, int(math.ceil(ih * s))), max(w, int(math.ceil(iw * s)))
    x = F.interpolate(img[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    y0 = int(rng.integers(0, nh - h + 1))
    x0 = int(rng.integers(0, nw - w + 1))
    x = x[:, y0:y0 + h, x0:x0 + w]
    if rng.uniform() < 0.5:
        x = torch.flip(x, [2])
    if x.shape[0] == 1:
        x = x * torch.from_numpy(rng.uniform(0.6, 1.0, size=(3, 1, 1)).astype(np.float32))
    return x.numpy().astype(np.float32).copy()


def texture(rng, h, w):
    """An RGB texture [3,h,w] in [0,1]: a photograph's crop (6 in 10) or
    a procedural one."""
    if rng.uniform() < 0.6:
        return photo(rng, h, w)
    return procedural(rng, h, w)


def procedural(rng, h, w):
    """An RGB texture [3,h,w] in [0,1]: smooth waves of brightness and
    colour, flat-coloured ellipses and rectangles with sharp edges, and in
    some textures fine grain."""
    luma = 0.5 + waves(rng, h, w, 12, 3, 300, rng.uniform(0.2, 0.5))
    dr = waves(rng, h, w, 3, 20, 300, rng.uniform(0.05, 0.25))
    db = waves(rng, h, w, 3, 20, 300, rng.uniform(0.05, 0.25))
    img = np.stack([luma + dr, luma - (0.299 * dr + 0.114 * db) / 0.587, luma + db])
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(rng.integers(0, 25)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(3, 40, size=2)
        if rng.uniform() < 0.5:
            d = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
            alpha = np.clip((1 - d) * min(rx, ry) + 0.5, 0, 1)
        else:
            alpha = np.clip(np.minimum(rx - np.abs(x - cx), ry - np.abs(y - cy)) + 0.5, 0, 1)
        colour = rng.uniform(0, 1, size=(3, 1, 1)).astype(np.float32)
        img = img * (1 - alpha) + colour * alpha * rng.uniform(0.5, 1)
    if rng.uniform() < 0.5:
        grain = rng.normal(0, rng.uniform(0.01, 0.06), size=(1, h, w)).astype(np.float32)
        img = img + grain
    return np.clip(img, 0, 1).astype(np.float32)


def blob(rng, size, radius):
    """An object's outline as an alpha mask [1,size,size]: a circle whose
    radius wobbles with the angle, edges anti-aliased."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    rho, theta = np.hypot(x, y), np.arctan2(y, x)
    r = np.full_like(theta, radius)
    for k in range(2, 6):
        r += radius * rng.uniform(0, 0.25 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.clip(r - rho + 0.5, 0, 1)[None].astype(np.float32)


def motion(rng, reach, rot, zoom):
    """A motion over the whole interval: translation (pixels), rotation
    (radians), log zoom."""
    kind = rng.uniform()
    if kind < 0.4:
        m = rng.uniform(0, reach * 0.15)
    elif kind < 0.8:
        m = rng.uniform(0, reach * 0.45)
    else:
        m = rng.uniform(0, reach)
    a = rng.uniform(0, 2 * np.pi)
    return (m * math.cos(a), m * math.sin(a), rng.uniform(-rot, rot), rng.uniform(-zoom, zoom))


def sample_at(img, centre, origin, mv, s, warp=None):
    """img ([C,h,w]) seen in an HxW frame at time s: frame point p shows
    img at centre + R(-a s) (p - origin - v s) / e^(z s), plus s times the
    non-rigid field warp ([2,H,W] pixels) if given."""
    vx, vy, a, z = mv
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32) + 0.5,
                            torch.arange(W, dtype=torch.float32) + 0.5, indexing="ij")
    px, py = xs - origin[0] - vx * s, ys - origin[1] - vy * s
    c, sn = math.cos(-a * s), math.sin(-a * s)
    k = math.exp(-z * s)
    ux = centre[0] + k * (c * px - sn * py)
    uy = centre[1] + k * (sn * px + c * py)
    if warp is not None:
        ux = ux + s * warp[0]
        uy = uy + s * warp[1]
    h, w = img.shape[1], img.shape[2]
    grid = torch.stack([ux * 2 / w - 1, uy * 2 / h - 1], 2)[None]
    return F.grid_sample(torch.from_numpy(img)[None], grid, mode="bilinear",
                         padding_mode="border", align_corners=False)[0]


def example(seed, index):
    """One training example: frames at s=0, 1 and the truth at t, as
    uint8 [3,3,H,W] (frame0, frame1, truth), and t."""
    frame, t, _ = scene(seed, index)
    return camera(np.random.default_rng([seed, index, 7]), torch.stack([frame(0.0), frame(1.0), frame(t)])), t


def scene(seed, index):
    """Scene index of seed as (frame, t, kinds): frame(s) renders it at
    time s (uint8 [3,H,W], before camera), t is the time of its truth,
    kinds says what it holds (background motion in pixels, particles,
    a bending background, a brightness change)."""
    rng = np.random.default_rng([seed, index])
    t = 0.5 if rng.uniform() < 0.5 else float(rng.uniform(0.05, 0.95))
    bh, bw = 2 * H, 2 * W
    bg = texture(rng, bh, bw)
    bg_motion = motion(rng, 80, 0.05, 0.06)
    warp = None
    if rng.uniform() < 0.3:
        warp = torch.from_numpy(np.stack([waves(rng, H, W, 3, 60, 240, rng.uniform(1, 6)) for _ in range(2)]))
    objects = []
    bending = np.random.default_rng([seed, index, 11])
    for _ in range(rng.integers(0, 5)):
        size = 192
        radius = float(rng.uniform(12, 80))
        tex = texture(rng, size, size)
        mask = blob(rng, size, radius)
        origin = (rng.uniform(0, W), rng.uniform(0, H))
        mv = motion(rng, 40, 0.15, 0.12)
        mv = (mv[0] + bg_motion[0], mv[1] + bg_motion[1], mv[2], mv[3])
        # Half of the objects also change shape (a fin, a body bending):
        # a smooth deformation of up to 5 pixels, drawn from a stream of
        # its own, so that the scene's other draws do not depend on it.
        bend = None
        if bending.uniform() < 0.5:
            bend = torch.from_numpy(np.stack([waves(bending, H, W, 3, 20, 80, bending.uniform(1, 5)) for _ in range(2)]))
        objects.append((np.concatenate([tex, mask]), origin, mv, bend))
    particles = None
    if rng.uniform() < 0.25:
        n = int(rng.integers(20, 120))
        particles = (rng.uniform(0, W, n), rng.uniform(0, H, n), rng.uniform(0.7, 2.5, n),
                     rng.uniform(-0.5, 0.6, n), bg_motion[0] + rng.normal(0, 4, n), bg_motion[1] + rng.normal(0, 4, n))
    gains = (1.0, 1.0)
    if rng.uniform() < 0.3:
        gains = (float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.15)))

    def frame(s):
        img = sample_at(bg, (bw / 2, bh / 2), (W / 2, H / 2), bg_motion, s, warp)
        for layer, origin, mv, bend in objects:
            o = sample_at(layer, (96, 96), origin, mv, s, bend)
            img = img * (1 - o[3:]) + o[:3] * o[3:]
        if particles is not None:
            x0, y0, r, amp, vx, vy = particles
            ys, xs = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
            add = np.zeros((H, W), np.float32)
            for i in range(len(x0)):
                d2 = (xs - x0[i] - vx[i] * s) ** 2 + (ys - y0[i] - vy[i] * s) ** 2
                add += amp[i] * np.exp(-d2 / (r[i] * r[i]))
            img = img + torch.from_numpy(add)[None]
        img = img * (gains[0] + (gains[1] - gains[0]) * s)
        return torch.round(torch.clamp(img, 0, 1) * 255).to(torch.uint8)

    kinds = dict(background=math.hypot(bg_motion[0], bg_motion[1]), particles=particles is not None,
                 bending=warp is not None, light=gains != (1.0, 1.0))
    return frame, t, kinds


def camera(rng, frames):
    """frames (uint8 [3,3,H,W]) as a camera might see them: in 6 scenes in
    10 a contrast of 0.15-1 and a brightness offset (dark, flat footage as
    well as bright), in half of them sensor noise of up to 2.5/255, drawn
    anew for each frame."""
    x = frames.float() / 255
    if rng.uniform() < 0.6:
        k = float(0.15 * (1 / 0.15) ** rng.uniform())
        x = float(rng.uniform(0, 1 - k)) + k * x
    if rng.uniform() < 0.5:
        s = rng.uniform(0, 2.5 / 255)
        x = x + torch.from_numpy(rng.normal(0, s, size=x.shape).astype(np.float32))
    return torch.round(torch.clamp(x, 0, 1) * 255).to(torch.uint8)


def make_set(model, seed, first, count, log):
    frames = torch.empty(count, 3, 3, H, W, dtype=torch.uint8)
    ts = torch.empty(count)
    flows = torch.empty(count, 2, H // model.scale, W // model.scale)
    lights = torch.empty(count, 1, 1, 1)  # flow2's brightness k
    start = time.time()
    for i in range(count):
        frames[i], ts[i] = example(seed, first + i)
        f = frames[i].float() / 255
        with torch.no_grad():
            flow, k = model.flow_of(f[0:1], f[1:2])
        flows[i], lights[i] = flow[0], k[0]
        if (i + 1) % 200 == 0:
            log("  %d/%d examples, %.0f s" % (i + 1, count, time.time() - start))
    return frames, ts, flows, lights


def psnr_of(model, frames, ts, flows, lights):
    """Mean PSNR (RGB, 8-bit output) of the model and of flow2 (the model
    with its network's output at zero) on a set."""
    out = []
    with torch.no_grad():
        for i in range(0, len(ts), BATCH):
            f = frames[i:i + BATCH].float() / 255
            got = model.synthesise(f[:, 0], f[:, 1], ts[i:i + BATCH], flows[i:i + BATCH], lights[i:i + BATCH], clamp=True)
            got = torch.round(got * 255) / 255
            mse = ((got - f[:, 2]) ** 2).mean(dim=(1, 2, 3))
            out.append(10 * torch.log10(1 / torch.clamp(mse, min=1e-10)))
    return torch.cat(out).mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(HERE, "flow3.weights"))
    ap.add_argument("--train", type=int, default=TRAIN)
    ap.add_argument("--photos", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                     "img2vid", PHOTO_PACKAGE),
                    help="where %s is unpacked if it is not installed" % PHOTO_PACKAGE)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)

    def log(msg):
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    _photos[:] = load_photos(photo_dir(args.photos))
    model = Flow3()
    model.eval()  # no dropout or batch norm: eval changes nothing but says so
    log("rendering %d training and %d validation examples at %dx%d, with flow2's field" % (args.train, VALID, W, H))
    train = make_set(model, SEED, 0, args.train, log)
    valid = make_set(model, SEED, 10 ** 6, VALID, log)
    flow2 = psnr_of(model, *valid)
    log("validation: flow2 %.2f dB" % flow2)

    params = [p for n, p in model.named_parameters() if not n.startswith("to_")]
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    frames, ts, flows, lights = train
    start = time.time()
    running = 0.0
    for step in range(1, args.steps + 1):
        # Cosine decay from 1e-3 to 0 over the run.
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        idx = torch.randint(0, len(ts), (BATCH,), generator=gen)
        f = frames[idx].float() / 255
        got = model.synthesise(f[:, 0], f[:, 1], ts[idx], flows[idx], lights[idx], clamp=True)
        # The squared error, which PSNR measures: where the network cannot
        # tell which warp is right, it is the mean of the two that this
        # loss rewards, where an absolute error rewards picking one, a
        # gamble that lost on camera footage.
        loss = ((got - f[:, 2]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item()
        if step % 250 == 0:
            log("step %d/%d: loss %.5f, %.2f s/step" % (step, args.steps, running / 250, (time.time() - start) / step))
            running = 0.0
        if step % 1000 == 0 or step == args.steps:
            log("validation at step %d: flow3 %.2f dB, flow2 %.2f dB" % (step, psnr_of(model, *valid), flow2))
            model.save_weights(args.out)
    with open(args.out, "rb") as fh:
        log("wrote %s (sha256 %s) in %.0f s of training" % (args.out, hashlib.sha256(fh.read()).hexdigest(), time.time() - start))


if __name__ == "__main__":
    main()
