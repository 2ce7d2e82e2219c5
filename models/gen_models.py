#!/usr/bin/env python3
"""Builds img2vid's built-in interpolation models and their manifests.

Run with Debian's python3 (python3-torch 1.13, python3-onnx 1.12, numpy):

    /usr/bin/python3 models/gen_models.py [--out DIR]

It rewrites, deterministically, in the folder of this script (or in DIR,
which the test that checks the committed files are reproducible uses):
  flow3.onnx, flow3.json   flow2 with a learned fusion: a small network,
                           whose weights (flow3.weights) train_flow3.py
                           trains, weighs the two warps
  flow2.onnx, flow2.json   motion-compensated interpolation with a wide motion
                           search and sharp motion boundaries, blurred where
                           its motion is uncertain, the default model
  flow.onnx, flow.json     its predecessor: the same estimator without search
                           or candidates
  blend.onnx, blend.json   plain cross-fade (1-t)*frame0 + t*frame1, the baseline
  testdata/                a small input pair and the torch modules' outputs,
                           which the Go tests compare the committed graphs with
  testdata/detect/         three small detect models (one per decoder layout)
                           that find solid red, green and blue squares, with
                           their manifests: the tests' detectors
  testdata/frame/          sr2x: a fixed-size 2x upscaler with its manifest,
                           the tests' bring-your-own frame model

Every model takes frame0, frame1 (float32 [1,3,H,W], RGB in [0,1]) and t
(float32 [1]) and returns frame (float32 [1,3,H,W] in [0,1]), for any H and W
that are multiples of the manifest's "multiple".
"""

import argparse
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
OUT = HERE  # where the files are written; --out changes it
OPSET = 16  # GridSample arrived in opset 16; the CUDA provider runs it too.


class Blend(torch.nn.Module):
    """Cross-fade: what a video editor's dissolve does, motion ignored."""

    multiple = 1

    def forward(self, frame0, frame1, t):
        t = t.reshape(1, 1, 1, 1)
        return torch.clamp((1 - t) * frame0 + t * frame1, 0, 1)


def _sample(img, grid):
    """img ([N,C,h,w]) sampled bilinearly at grid, a pair (x, y) of
    [N,H,W] positions in GridSample's units; a position outside the image
    takes its nearest edge (border padding). The positions are clamped to
    the outer pixels' centres and sampled with zero padding, which is the
    same thing (the weight of a neighbour past the edge is then 0): ONNX
    Runtime's CPU GridSample does zero padding faster than border padding
    (9 % off flow2's time at 960x540 with 1.24.3, 18 % with 1.30.0; the
    clamps cost far less than that). GridSample takes most of every
    interpolator's time: it works through a frame's pixels one at a time,
    on one core, as it spreads over channels only."""
    h, w = img.shape[2], img.shape[3]
    x = torch.clamp(grid[0], -1 + 1.0 / w, 1 - 1.0 / w)
    y = torch.clamp(grid[1], -1 + 1.0 / h, 1 - 1.0 / h)
    return F.grid_sample(img, torch.stack([x, y], 3), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _pixel_grid(like):
    """The pixel centres of an image like like ([N,C,h,w]) in GridSample's
    coordinates, which run from -1 to 1 across the image's outer edges
    (align_corners=False): pixel x has its centre at (2x+1)/w - 1. Also
    returns the size of a pixel in those units."""
    h, w = like.shape[2], like.shape[3]
    bx = ((2 * torch.arange(w, dtype=like.dtype) + 1) / w - 1).reshape(1, 1, w)
    by = ((2 * torch.arange(h, dtype=like.dtype) + 1) / h - 1).reshape(1, h, 1)
    return bx, by, 2.0 / w, 2.0 / h


def _warp(img, grid, fx, fy):
    """Samples img ([N,C,h,w]) at (x+fx, y+fy), offsets [N,1,h,w] in pixels;
    grid is _pixel_grid(img), made once per level rather than per warp."""
    bx, by, px, py = grid
    return _sample(img, (bx + fx[:, 0] * px, by + fy[:, 0] * py))


def _box(x, r):
    """Mean over a (2r+1)^2 window, edges repeated."""
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)


def _gradients(x):
    """Central differences along x and y, edges repeated."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]) * 0.5
    gy = (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]) * 0.5
    return gx, gy


def _upsample(x, s):
    return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)


class Flow(torch.nn.Module):
    """Motion-compensated interpolation.

    Motion is estimated once per pair, on luma at 1/4 resolution, as one
    symmetric flow field v centred between the frames: frame0 at x - v/2
    matches frame1 at x + v/2. Estimating it at the half-way point (rather
    than 0->1 and 1->0) gives, for every output pixel, the motion through
    that pixel, so no forward splatting or hole filling is needed, and it
    treats both frames alike.

    The estimator is pyramidal Lucas-Kanade with its iterations unrolled:
    coarse-to-fine over 4 levels (1/4 .. 1/32 resolution, so motions of
    tens of pixels are found at the coarse levels), at each level a few
    Gauss-Newton steps that warp both frames by the current flow, solve the
    2x2 normal equations over a small window, and smooth the update. A
    small Tikhonov term keeps the solve stable where the image has no
    texture; there the flow stays what the coarser levels said, and the
    result degrades to a cross-fade instead of to noise.

    The frames are warped as luma at full resolution and colour difference
    (R-Y, B-Y) at half resolution, as YUV 4:2:0 video carries them anyway:
    that halves the cost of the warps, the bulk of the work. Besides them,
    only the flow's bilinear upsampling and the weighted mean run at full
    resolution, which keeps the model fast on CPUs. At t=0 and t=1 the warp
    of the frame that counts is the identity: the output is that frame,
    with its colour difference at half resolution.
    """

    # Four halvings below the 1/4-resolution base: H and W multiples of 32.
    multiple = 32
    scale = 4        # flow is estimated at 1/scale of the frame size
    levels = 4       # pyramid levels from 1/scale down
    iterations = 3   # Gauss-Newton steps per level
    window = 3       # Lucas-Kanade window radius (7x7)
    tikhonov = 1e-5  # regulariser of the normal equations, in luma^2
    max_step = 1     # largest update per iteration, in pixels of the level

    def __init__(self):
        super().__init__()
        # RGB -> Rec. 601 luma Y and colour differences R-Y, B-Y, and back.
        # Motion is estimated on luma alone.
        to_yc = torch.tensor([[0.299, 0.587, 0.114],
                              [0.701, -0.587, -0.114],
                              [-0.299, -0.587, 0.886]], dtype=torch.float64)
        self.register_buffer("to_luma", to_yc[:1].float())
        self.register_buffer("to_chroma", to_yc[1:].float())
        self.register_buffer("to_rgb", torch.linalg.inv(to_yc).float())

    def mismatch(self, a, b, grid, fx, fy):
        """Local mean absolute difference of a and b warped by +-flow/2."""
        return _box(torch.abs(_warp(b, grid, fx / 2, fy / 2) - _warp(a, grid, -fx / 2, -fy / 2)), self.window)

    def estimate(self, g0, g1):
        """Symmetric flow between luma images g0 and g1, in their pixels."""
        p0, p1 = [g0], [g1]
        for _ in range(self.levels - 1):
            p0.append(F.avg_pool2d(p0[-1], 2))
            p1.append(F.avg_pool2d(p1[-1], 2))
        fx = torch.zeros_like(p0[-1])
        fy = torch.zeros_like(p0[-1])
        for level in range(self.levels - 1, -1, -1):
            a, b = p0[level], p1[level]
            grid = _pixel_grid(a)
            if level < self.levels - 1:
                fx = _upsample(fx, 2) * 2
                fy = _upsample(fy, 2) * 2
                # Where the coarser level was misled (detail that pooling
                # aliased, a small object against a moving background),
                # starting again from rest matches better: keep per pixel
                # whichever of the two explains the frames better.
                moved = self.mismatch(a, b, grid, fx, fy)
                still = self.mismatch(a, b, grid, torch.zeros_like(fx), torch.zeros_like(fy))
                keep = (moved <= still).to(fx.dtype)
                fx = fx * keep
                fy = fy * keep
            for _ in range(self.iterations):
                w0 = _warp(a, grid, -fx / 2, -fy / 2)
                w1 = _warp(b, grid, fx / 2, fy / 2)
                # Moving both by +-d/2 changes w1 - w0 by grad . d, with
                # grad the mean of the two frames' gradients.
                gx, gy = _gradients((w0 + w1) * 0.5)
                gt = w1 - w0
                r = self.window
                sxx = _box(gx * gx, r) + self.tikhonov
                syy = _box(gy * gy, r) + self.tikhonov
                sxy = _box(gx * gy, r)
                sxt = _box(gx * gt, r)
                syt = _box(gy * gt, r)
                det = sxx * syy - sxy * sxy
                # A step of at most a pixel per iteration: a larger one
                # means the linearisation has failed (an occlusion, a
                # brightness change), and the coarser estimate is safer.
                fx = fx + torch.clamp((sxy * syt - syy * sxt) / det, -self.max_step, self.max_step)
                fy = fy + torch.clamp((sxy * sxt - sxx * syt) / det, -self.max_step, self.max_step)
                fx = _box(fx, 1)
                fy = _box(fy, 1)
        return fx, fy

    def forward(self, frame0, frame1, t):
        t = torch.clamp(t.reshape(1, 1, 1), 0, 1)
        y0, y1 = _mix(self.to_luma, frame0), _mix(self.to_luma, frame1)
        c0 = _mix(self.to_chroma, F.avg_pool2d(frame0, 2))
        c1 = _mix(self.to_chroma, F.avg_pool2d(frame1, 2))
        g0, g1 = F.avg_pool2d(y0, self.scale), F.avg_pool2d(y1, self.scale)
        fx, fy = self.estimate(g0, g1)
        # The flow in grid units (2/size per pixel), whatever the resolution.
        n = torch.cat([fx * (2.0 / g0.shape[3]), fy * (2.0 / g0.shape[2])], 1)
        ya, yb = _grids(_upsample(n, self.scale), t)
        ca, cb = _grids(_upsample(n, self.scale // 2), t)
        y = _mix_in_time(_sample(y0, ya), _sample(y1, yb), t)
        c = _mix_in_time(_sample(c0, ca), _sample(c1, cb), t)
        return _mix(self.to_rgb, torch.cat([y, _upsample(c, 2)], 1))


def _mix(m, x):
    """Applies the colour matrix m ([K,C]) to every pixel of x ([1,C,h,w]).
    A MatMul, not a 1x1 Conv: ONNX Runtime's CPU provider would reorder a
    three-channel Conv into 16-channel blocks, several times the work."""
    h, w = x.shape[2], x.shape[3]
    return torch.matmul(m, x.reshape(x.shape[1], h * w)).reshape(1, m.shape[0], h, w)


def _mix_batch(m, x):
    """_mix for a batch ([N,C,h,w]); the same MatMul when N is 1."""
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    return torch.matmul(m, x.reshape(n, x.shape[1], h * w)).reshape(n, m.shape[0], h, w)


def _weight(m, t):
    """The weight of frame1's warp that fusion logit m gives t:
    t*e^m / (t*e^m + 1-t); t where m is 0, 0 at t=0 and 1 at t=1."""
    a = t * torch.exp(m)
    return a / (a + 1 - t)


def _grids(n, t):
    """Sample positions (see _sample) for frame0 (back by t*n) and frame1
    (forward by (1-t)*n), n [N,2,h,w] a flow in grid units, t [1,1,1] or
    [N,1,1]."""
    bx, by, _, _ = _pixel_grid(n)
    nx, ny = n[:, 0], n[:, 1]
    return ((bx - t * nx, by - t * ny),
            (bx + (1 - t) * nx, by + (1 - t) * ny))


def _mix_in_time(w0, w1, t):
    return w0 + t.unsqueeze(0) * (w1 - w0)


def _warps(x0, x1, v, t):
    """x0 moved back by t*v and x1 forward by (1-t)*v to time t: v
    ([N,2,h,w]) a symmetric field in grid units at x0's resolution, t
    [N,1,1,1] or [1,1,1,1]."""
    g0, g1 = _grids(v, t[:, 0])
    return _sample(x0, g0), _sample(x1, g1)


def _at_time(x0, x1, v, t, weight=None):
    """x0 and x1 warped to time t by v (see _warps) and mixed: x1 weighs
    weight ([N,1,h,w]), t where not given."""
    w0, w1 = _warps(x0, x1, v, t)
    return w0 + (t if weight is None else weight) * (w1 - w0)


def _field_at(fx, fy, t):
    """The field ([N,1,h,w] each, in pixels) moved from midway between the
    frames, where it is estimated, to time t ([N,1,1,1]): the vector at x
    is that of what sits at x midway, which at t has moved by (t-1/2)v,
    so the vector through x at t is v at x+(1/2-t)v. One fixed-point step
    of that, sampled bilinearly; at t=1/2 it changes nothing. Measured on
    the aquarium clip at 4x (t=1/4, 3/4): +0.05 dB; the step the other
    way, -0.15; a second step, no gain (where one frame hides what the
    other shows, the equation has no single answer)."""
    s = 0.5 - t
    v = _warp(torch.cat([fx, fy], 1), _pixel_grid(fx), s * fx, s * fy)
    return v[:, :1], v[:, 1:]


def _diffuse(x, d, steps):
    """x ([N,C,h,w]) after `steps` explicit steps of the heat equation,
    each by d ([N,1,h,w], at most 1/4): x + d*laplacian(x), the laplacian
    from the 3x3 mean (3*(mean - x), the 9-point stencil, the same in
    every direction). After the steps a pixel is the mean of its
    neighbourhood under a Gaussian of variance 2*steps*d per axis; with
    d at most 1/4 every step is a weighted mean with weights >= 0, so
    nothing rings or overshoots."""
    for _ in range(steps):
        x = x + 3 * d * (_box(x, 1) - x)
    return x


def _positions(like):
    """The column and row index of every pixel of an image like like
    ([N,C,h,w]), as [1,1,1,w] and [1,1,h,1]."""
    h, w = like.shape[2], like.shape[3]
    return (torch.arange(w, dtype=like.dtype).reshape(1, 1, 1, w),
            torch.arange(h, dtype=like.dtype).reshape(1, 1, h, 1))


def _inside(px, py, w, h):
    """1 where pixel position (px, py) lies within a w x h image, else 0."""
    return ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).to(px.dtype)


def _outside(px, py, w, h):
    """How far, in pixels along x plus along y, pixel position (px, py)
    lies outside a w x h image; 0 inside."""
    return F.relu(-px) + F.relu(px - (w - 1)) + F.relu(-py) + F.relu(py - (h - 1))


def _shift(x, dx, dy):
    """x ([N,C,h,w]) moved by whole pixels: out(x, y) = x(x+dx, y+dy), edges
    repeated."""
    r = max(abs(dx), abs(dy))
    p = F.pad(x, (r, r, r, r), mode="replicate")
    h, w = x.shape[2], x.shape[3]
    return p[:, :, r + dy:r + dy + h, r + dx:r + dx + w]


def _median9(x):
    """3x3 median of every pixel of x ([N,C,h,w]), edges repeated: the
    19-exchange sorting network that leaves the median of nine values in
    the middle (Paeth's), as Min and Max nodes. It keeps a motion
    boundary sharp where a mean would smear it, and drops isolated wrong
    vectors."""
    p = [_shift(x, dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]

    def order(i, j):
        p[i], p[j] = torch.minimum(p[i], p[j]), torch.maximum(p[i], p[j])

    for i, j in ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8),
                 (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)):
        order(i, j)
    return p[4]


class Flow2(Flow):
    """Motion-compensated interpolation that follows large motion and keeps
    motion boundaries sharp; the default.

    The same symmetric Lucas-Kanade estimator and mix by t as flow, with
    these changes to the estimator:

    - Search, not just descent, at the coarsest level (1/32 resolution):
      every whole-pixel symmetric displacement within +-search pixels there
      (+-96 pixels of the frame) is tried, the best over a 7x7 window is
      refined by Gauss-Newton steps, and per pixel it competes with what
      descent from rest finds (on a small frame the coarsest level has few
      pixels, and either can be the one misled). Motion beyond what steps
      from rest reach is found, and a local match near rest does not trap
      it.
    - Candidates, not one guess, at each finer level: the upsampled coarse
      field, rest, and the coarse field of the neighbours two pixels away
      in each direction; per pixel the one that matches the frames best
      over the window is kept. A vector on the wrong side of a motion
      boundary (the coarse level blurs boundaries) is replaced by its
      neighbour from the right side, which also carries the motion of a
      small object the coarser level missed.
    - A 3x3 median of the field after each level, which keeps boundaries
      sharp and removes isolated outliers where flow's box mean spreads
      them, and a last per-pixel choice at 1/4 resolution of the vectors 8
      pixels away (32 of the frame) over a 5x5 window, taken only where
      one explains the frames clearly better than the pixel's own (a
      third less mismatch): a wrong match the pyramid carried down is
      replaced by the motion around it.
    - Room for a change of light, which flow reads as motion wherever the
      image is smooth: each Gauss-Newton step solves for a brightness
      offset between the frames over its window as well as for the
      motion (refine), and where the frames' brightness as a whole
      differs by more than 3 % (exposure, a fade, flicker) the luma the
      estimator and the pick compare is first brought to the same
      brightness (brightness). At the coarsest level steps with and
      without the offset compete (coarsest). On 160 synthetic scenes
      none of the models was tuned on (scenes_bench.py), the 39 with a
      brightness change went from 1.59 dB behind ffmpeg's minterpolate to
      2.45 dB ahead, the others stayed 3.02 dB ahead; on the aquarium
      clip, +0.12 dB at 2x and +0.02 at 4x (bench/interp). The offset alone
      at every level did better on the clip (+0.21, +0.13) but lost 15 dB
      on a whole-frame shift of 84,24 pixels on one of TestLargeMotion's
      textures, and left the scenes with a brightness change 1.3 dB
      behind this; bringing the frames to the same brightness however
      little they differ cost 0.08 dB on average on the scenes where
      nothing changed (up to 3 dB on one), as the estimate of how much
      the light changed errs by up to 2 % there.
    - Every choice among candidates charges a candidate for how far its
      matches fall outside the frame (choose), where the frames'
      repeated edge pixels can agree by chance: a vector reaching 60
      pixels out at a frame's edge, found by such a match, cost almost
      9 dB on one synthetic scene. A small step out, what enters the frame,
      still wins on the frames' evidence. On the 160 scenes +0.11 dB
      (2.99 dB ahead of minterpolate from 2.88; behind it on 12 scenes
      from 18), on the aquarium clip in torch +0.005 and +0.04 dB at 2x
      and 4x.

    and one to how the field reaches full resolution: flow upsamples the
    1/4-resolution field bilinearly, which at a motion boundary blends two
    motions into vectors that belong to neither (thin streaks of the
    moving object drawn across the background, a fin or tail that
    vanishes). flow2 chooses instead, per pixel at 1/2 resolution, among
    the vector of its 1/4-resolution pixel and those of the two nearest
    to it across and down: the one whose two warps of luma to time t
    agree best, pixel by pixel (pick). That puts a motion boundary within
    a pixel or two of where the frames put it; at full resolution each
    2x2 block takes its vector.

    Measured in torch on the aquarium clip (at 2x and 4x, see
    docs/BENCHMARKS.md) against the previous flow2 (bilinear upsampling,
    and a last choice among the vectors 2, 4 and 8 pixels away, taken
    wherever one matched better): +0.08 and +0.14 dB, at about the same
    CPU time. Variants measured there: choosing among all four
    neighbours and the bilinear vector, +0.004 and +0.03 dB more for some
    15 % more CPU time; the pick without the last choice at 1/4
    resolution did as well on the clip but lost whole-frame shifts of 84
    pixels on some textures; the last choice taken wherever a vector
    matched better (no margin) cost 0.02-0.05 dB on the clip; no motion
    as a candidate of the pick lost 0.27 dB at 2x (flat water matches at
    rest too), and judging agreement over a 3x3 window rather than per pixel
    lost 0.04-0.05.

    The field is estimated midway between the frames; for a frame at
    another t the pick first moves it to t (_field_at), so that it looks
    for a boundary where the boundary is at t: +0.05 dB on the clip at 4x
    (t=1/4, 3/4), nothing at 2x (t=1/2, where it changes nothing). What
    else was tried on the clip after the pick, none of it ahead by more
    than 0.01 dB: refining the picked field at 1/2 resolution by
    Gauss-Newton steps, a smaller or larger window at the last level,
    agreement judged on colour as well as luma, a second pick among the
    picked field's neighbours, a separate pick for each frame, and
    estimating at 1/2 resolution to pick at full (0.12 dB behind, at three
    times the time); see docs/BENCHMARKS.md.

    Mixing the two warps by visibility (which frame shows a pixel that an
    object covers in the other) was tried, weighting by the divergence of
    the field and by whether a neighbouring motion explains a frame's
    pixel better; both lost 0.1-0.6 dB on real footage and gained nothing
    measurable on synthetic occlusions, because in what one frame hides
    the field itself is unreliable, so the mix stays the one by t.

    Last, the frame is blurred where the field is uncertain. Where the
    vectors around a pixel disagree (a fin that bends, particles, the
    edge of a moving object), which of them is right is a guess, and a
    sharp warp by the guess puts detail in the wrong place. The estimate
    that errs least in squared error is the mean of the warps over the
    vectors the pixel might have: with their spread as a covariance S,
    to second order that is the sharp warp plus (1/2)tr(S H) of its
    Hessian H, a Gaussian blur of variance S. Frame0's warp moves by t
    times the vector and frame1's by 1-t times, so after the mix by t the
    variance is t(1-t) times that of the field (spread), measured over
    the 3x3 1/4-resolution pixels around, and the blur is the heat
    equation run for that long (_diffuse), in 8 steps of at most 1/4 (up
    to 2 pixels' variance per axis). Where the field is uniform nothing
    changes. Measured: +0.19 dB at 2x and +0.25 at 4x on the aquarium
    clip (bench/interp) at about 8 % more CPU time, +0.11 dB on flow3's
    96 synthetic validation scenes (better on 75); a 5x5 window gained
    0.02 dB more on the clip but only +0.04 on the scenes, so 3x3. A
    mixture of the warps by all nine neighbouring vectors, the mean
    itself rather than its second-order form, gained +0.18 at 2x at four
    times the CPU time; a light blur everywhere lost 0.25 (see
    docs/BENCHMARKS.md).
    """

    search = 3       # coarse search radius in pixels of the coarsest level
    spread_window = 1  # radius at 1/4 resolution over which the field's spread is measured (3x3)
    steps = 8        # diffusion steps, at most 1/4 each: a blur of at most 2 pixels' variance per axis
    light_floor = 0.03  # brightness ratios within 3 % count as no change of light (see brightness)
    outside_cost = 0.01  # mismatch (luma) a candidate pays per pixel its match falls outside the frame (see choose)

    def coarse_search(self, a, b):
        """The best whole-pixel symmetric displacement per pixel within
        +-search, a bias towards smaller motion breaking near-ties (where
        there is no texture, rest is the safest answer)."""
        s = self.search
        n = 2 * s + 1
        d = torch.arange(-s, s + 1, dtype=a.dtype)
        dx = d.repeat(n).reshape(n * n, 1, 1, 1)
        dy = d.repeat_interleave(n).reshape(n * n, 1, 1, 1)
        zero = torch.zeros_like(a)
        k = n * n
        cost = self.mismatch(a.expand(k, -1, -1, -1), b.expand(k, -1, -1, -1), _pixel_grid(a), dx + zero, dy + zero)
        cost = cost + 1e-3 * (dx.abs() + dy.abs())
        # The index (0..n*n-1) as a float, split into row and column by
        # Floor rather than an integer Mod: exact for these small numbers.
        best = torch.argmin(cost, dim=0, keepdim=True).to(a.dtype)
        row = torch.floor(best / n)
        return best - row * n - s, row - s

    def choose(self, a, b, fx, fy, reach, window, rest, others=(), stay=0.0):
        """Per pixel, the candidate field that explains the frames best
        over a (2*window+1)^2 window: the field itself, the field of the
        neighbours reach pixels away in each direction (for each reach),
        the fields in others, and, if rest, no motion. With stay, another
        candidate's mismatch must be lower than the field's own by that
        factor (1+stay) to replace it."""
        cx, cy = [fx], [fy]
        if rest:
            cx.append(torch.zeros_like(fx))
            cy.append(torch.zeros_like(fy))
        for ox, oy in others:
            cx.append(ox)
            cy.append(oy)
        for r in reach:
            for dx, dy in ((-r, 0), (r, 0), (0, -r), (0, r)):
                cx.append(_shift(fx, dx, dy))
                cy.append(_shift(fy, dx, dy))
        cx, cy = torch.cat(cx, 0), torch.cat(cy, 0)
        k = cx.shape[0]
        grid = _pixel_grid(a)
        cost = _box(torch.abs(_warp(b.expand(k, -1, -1, -1), grid, cx / 2, cy / 2)
                              - _warp(a.expand(k, -1, -1, -1), grid, -cx / 2, -cy / 2)), window)
        # A match outside the frame compares repeated edge pixels, which
        # can agree by chance: a candidate pays outside_cost for every
        # pixel its matches fall outside, so that a small step out (what
        # enters the frame) still wins on the frames' evidence and a long
        # reach out (a spurious match) does not.
        h, w = a.shape[2], a.shape[3]
        x, y = _positions(a)
        cost = cost + self.outside_cost * (_outside(x - cx / 2, y - cy / 2, w, h) + _outside(x + cx / 2, y + cy / 2, w, h))
        if stay:
            cost = torch.cat([cost[:1], cost[1:] * (1 + stay)], 0)
        best = torch.argmin(cost, dim=0, keepdim=True)
        return torch.gather(cx, 0, best), torch.gather(cy, 0, best)

    def refine(self, a, b, fx, fy, offset=True):
        """Gauss-Newton steps as in flow's; with offset, each step solves
        for a brightness offset between the frames over the window as
        well as for the motion. A change of light (exposure, flicker,
        light through water) is locally an offset, which flow's equations
        read as motion wherever the image is smooth: a tenth of a pixel
        per 1/1000 of brightness where the gradient is 1/100 per pixel.
        With the offset an unknown, the normal equations are flow's over
        the window's deviations from their means: three more box means
        per step."""
        grid = _pixel_grid(a)
        r = self.window
        for _ in range(self.iterations):
            w0 = _warp(a, grid, -fx / 2, -fy / 2)
            w1 = _warp(b, grid, fx / 2, fy / 2)
            gx, gy = _gradients((w0 + w1) * 0.5)
            gt = w1 - w0
            sxx, syy, sxy = _box(gx * gx, r), _box(gy * gy, r), _box(gx * gy, r)
            sxt, syt = _box(gx * gt, r), _box(gy * gt, r)
            if offset:
                mx, my, mt = _box(gx, r), _box(gy, r), _box(gt, r)
                sxx, syy, sxy = sxx - mx * mx, syy - my * my, sxy - mx * my
                sxt, syt = sxt - mx * mt, syt - my * mt
            sxx, syy = sxx + self.tikhonov, syy + self.tikhonov
            det = sxx * syy - sxy * sxy
            fx = fx + torch.clamp((sxy * syt - syy * sxt) / det, -self.max_step, self.max_step)
            fy = fy + torch.clamp((sxy * sxt - sxx * syt) / det, -self.max_step, self.max_step)
            fx = _box(fx, 1)
            fy = _box(fy, 1)
        return _median9(fx), _median9(fy)

    def coarsest(self, a, b):
        """The field at the coarsest level, a and b the luma there: the
        search's answer and rest, each refined with and without the
        brightness offset, compete per pixel. On a small frame the
        coarsest level has few pixels and any of the four can be the one
        misled; the offset, one more unknown per window, is what misleads
        most often there (a whole-frame shift of 84,24 pixels on a 384x256
        frame, 15 dB lost on one texture without the others)."""
        zero = torch.zeros_like(a)
        search = self.coarse_search(a, b)
        fx, fy = self.refine(a, b, *search)
        others = [self.refine(a, b, zero, zero), self.refine(a, b, *search, offset=False),
                  self.refine(a, b, zero, zero, offset=False)]
        return self.choose(a, b, fx, fy, (), self.window, False, others)

    def brightness(self, g0, g1):
        """k ([N,1,1,1]) such that luma g0*k and g1/k (1/4 resolution)
        are as bright, where the frames' brightness differs by more than
        light_floor: a change of light over the whole frame (exposure,
        a fade, flicker) that the offset in refine, local and additive,
        only partly absorbs, and that the matching costs (choose, pick)
        would read as a mismatch. The ratio is that of the frames' mean
        brightness over what both show, not over the whole frame, which
        motion changes: the coarsest field, found after the frames are
        brought to the same mean, pairs the pixels at 1/8 resolution, and
        pixels whose match falls outside the other frame are left out.
        The ratio's log is shrunk towards 0 by light_floor: the estimate
        errs by up to 2 % on scenes where the light does not change
        (content that moves in and out), and an error of even 0.25 %
        costs up to 0.8 dB where the frames match exactly."""
        m0 = g0.mean(dim=(1, 2, 3), keepdim=True)
        m1 = g1.mean(dim=(1, 2, 3), keepdim=True)
        m = (m0 + m1) / 2
        k = 2 ** (self.levels - 1)
        fx, fy = self.coarsest(F.avg_pool2d(g0 * (m / m0), k), F.avg_pool2d(g1 * (m / m1), k))
        a, b = F.avg_pool2d(g0, 2), F.avg_pool2d(g1, 2)
        fx, fy = _upsample(fx, k // 2) * (k // 2), _upsample(fy, k // 2) * (k // 2)
        grid = _pixel_grid(a)
        w0 = _warp(a, grid, -fx / 2, -fy / 2)
        w1 = _warp(b, grid, fx / 2, fy / 2)
        h, w = a.shape[2], a.shape[3]
        x, y = _positions(a)
        both = _inside(x - fx / 2, y - fy / 2, w, h) * _inside(x + fx / 2, y + fy / 2, w, h)
        n = both.sum(dim=(1, 2, 3), keepdim=True) + 1e-6
        r = torch.log(((w1 * both).sum(dim=(1, 2, 3), keepdim=True) / n + 1e-6)
                      / ((w0 * both).sum(dim=(1, 2, 3), keepdim=True) / n + 1e-6))
        r = torch.sign(r) * F.relu(torch.abs(r) - self.light_floor)
        return torch.exp(r / 2)

    def estimate(self, g0, g1):
        p0, p1 = [g0], [g1]
        for _ in range(self.levels - 1):
            p0.append(F.avg_pool2d(p0[-1], 2))
            p1.append(F.avg_pool2d(p1[-1], 2))
        fx, fy = self.coarsest(p0[-1], p1[-1])
        for level in range(self.levels - 2, -1, -1):
            a, b = p0[level], p1[level]
            fx, fy = self.choose(a, b, _upsample(fx, 2) * 2, _upsample(fy, 2) * 2, (2,), self.window, True)
            fx, fy = self.refine(a, b, fx, fy)
        # A vector 8 pixels away (32 of the frame), over a smaller window,
        # replaces one that is grossly wrong (a wrong match that the
        # pyramid carried down); only where it explains the frames clearly
        # better, which leaves the boundaries to pick (below).
        return self.choose(g0, g1, fx, fy, (8,), 2, False, stay=0.5)

    def pick(self, h0, h1, fx, fy, t):
        """The field at 1/2 resolution, in grid units: per pixel, of the
        vector of its 1/4-resolution pixel and those of the two
        1/4-resolution pixels nearest to it across and down, the one that
        warps luma h0 and h1 ([N,1,h,w], 1/2 resolution) to time t
        ([N,1,1,1]) most alike. The window and the smoothing leave a
        boundary between two motions a few pixels wide, which bilinear
        upsampling would blend into vectors of neither; this puts each
        pixel on the side the frames say. fx, fy is the field already
        moved to time t (_field_at), so a boundary is looked for where it
        is at t, not where it was midway."""
        n = torch.cat([fx * (2.0 / fx.shape[3]), fy * (2.0 / fx.shape[2])], 1)
        own = F.interpolate(n, scale_factor=2, mode="nearest")
        # 1 for the second pixel of each 2x2 block across (down), whose
        # nearer neighbour is to the right (below); two pixels at 1/2
        # resolution are the next 1/4-resolution vector.
        x = torch.arange(own.shape[3], dtype=own.dtype).reshape(1, 1, 1, -1)
        y = torch.arange(own.shape[2], dtype=own.dtype).reshape(1, 1, -1, 1)
        second_x, second_y = x - 2 * torch.floor(x / 2), y - 2 * torch.floor(y / 2)
        left, up = _shift(own, -2, 0), _shift(own, 0, -2)
        across = left + second_x * (_shift(own, 2, 0) - left)
        down = up + second_y * (_shift(own, 0, 2) - up)
        cands = [own, across, down]
        k, batch = len(cands), n.shape[0]
        v = torch.cat(cands, 0)  # candidate-major: candidate i of example j at i*batch + j
        w0, w1 = _warps(h0.repeat(k, 1, 1, 1), h1.repeat(k, 1, 1, 1), v, t.repeat(k, 1, 1, 1))
        h, w = v.shape[2], v.shape[3]
        best = torch.argmin(torch.abs(w1 - w0).reshape(k, batch, 1, h, w), dim=0, keepdim=True)
        return torch.gather(v.reshape(k, batch, 2, h, w), 0, best.expand(1, batch, 2, h, w))[0]

    def spread(self, fx, fy, t):
        """The diffusion per step (see _diffuse) at 1/4 resolution, in
        pixels of the frame: t(1-t)/2 times the variance of the field
        (fx, fy at time t, [N,1,h,w]) over the window, per axis, at most
        1/4. See the class's last paragraph."""
        r = self.spread_window
        mx, my = _box(fx, r), _box(fy, r)
        var = (_box(fx * fx, r) - mx * mx + _box(fy * fy, r) - my * my) * (self.scale ** 2 / 2)
        return torch.clamp(var * (t * (1 - t) / 2), 0, 0.25 * self.steps) / self.steps

    def render(self, y0, y1, c0, c1, fx, fy, k, t, m=None):
        """The frame at t ([N,1,1,1]) from luma y0, y1 and colour
        difference c0, c1 (1/2 resolution) of the frames [N,...] and the
        midway field fx, fy (1/4 resolution, pixels): the field moved to
        t, picked at 1/2 resolution (on luma made as bright by k, see
        brightness), both frames warped by it and mixed,
        by t or, where m (a fusion logit at 1/4 resolution, flow3's) is
        given, by the weight m gives t; then diffused where the field is
        uncertain. RGB [N,3,H,W]."""
        fx, fy = _field_at(fx, fy, t)
        v = self.pick(F.avg_pool2d(y0, 2) * k, F.avg_pool2d(y1, 2) / k, fx, fy, t)
        wy = wc = None
        if m is not None:
            wy, wc = _weight(_upsample(m, self.scale), t), _weight(_upsample(m, self.scale // 2), t)
        y = _at_time(y0, y1, F.interpolate(v, scale_factor=2, mode="nearest"), t, wy)
        c = _at_time(c0, c1, v, t, wc)
        d = self.spread(fx, fy, t)
        # The same blur in pixels of the frame is a quarter of the
        # variance in pixels of the half-resolution colour.
        y = _diffuse(y, _upsample(d, self.scale), self.steps)
        c = _diffuse(c, _upsample(d, self.scale // 2) * 0.25, self.steps)
        return _mix_batch(self.to_rgb, torch.cat([y, _upsample(c, 2)], 1))

    def forward(self, frame0, frame1, t):
        t = torch.clamp(t.reshape(1, 1, 1, 1), 0, 1)
        y0, y1 = _mix(self.to_luma, frame0), _mix(self.to_luma, frame1)
        c0 = _mix(self.to_chroma, F.avg_pool2d(frame0, 2))
        c1 = _mix(self.to_chroma, F.avg_pool2d(frame1, 2))
        fx, fy, k = self.motion(y0, y1)
        return self.render(y0, y1, c0, c1, fx, fy, k, t)

    def motion(self, y0, y1):
        """The midway field at 1/4 resolution and brightness's k, from
        the frames' luma y0, y1."""
        g0, g1 = F.avg_pool2d(y0, self.scale), F.avg_pool2d(y1, self.scale)
        k = self.brightness(g0, g1)
        fx, fy = self.estimate(g0 * k, g1 / k)
        return fx, fy, k


class Flow3(Flow2):
    """flow2's motion with a learned fusion: a small convolutional network
    at 1/4 resolution decides, per pixel, how much of each warped frame to
    take.

    flow2's estimator runs unchanged and gives the symmetric field v; both
    frames are warped as in flow2, each pixel by its picked vector. The
    network sees, at 1/4 resolution, both frames warped to time t by v
    (luma and colour difference), their difference, both frames unwarped,
    how the field changes, and t: the cues of occlusion (what is hidden in
    one frame does not match the other, and the field converges or
    diverges there) and of where v is wrong. It predicts m, a fusion
    logit: frame1's warp gets weight t*e^m / (t*e^m + 1-t), which is t
    where m = 0, 0 at t=0 and 1 at t=1 whatever m is. m is upsampled
    bilinearly to full resolution (and half, for colour). The network's
    last layer starts at zero, where the model is flow2 exactly; its
    weights are trained by train_flow3.py on synthetic scenes made there
    (never on evaluation footage) and read from flow3.weights. The mixed
    frame is then blurred where the field is uncertain, as flow2's is
    (render); training sees that too.

    It only weighs the warps. An earlier version also corrected each warp
    (up to 8 pixels) and added a luma residual: 0.6 dB ahead of flow2 on
    scenes like its training scenes, 0.2 dB behind on camera footage and
    0.1-1.5 dB behind on the tests' finely textured occlusions, where its
    corrections, made at 1/4 resolution, misplaced detail that flow2's
    field already aligns. The weighting alone, trained on the absolute
    error, gained on camera footage at 2x and lost at 4x; trained on the
    squared error (what PSNR measures; where the network cannot tell
    which warp is right it learns to keep their mean), it was a few
    hundredths of a dB ahead of flow2 on camera footage at both spacings
    while flow2 upsampled its field bilinearly. Since flow2 picks each
    pixel's vector by how well the warps agree (pick), what the network
    found to weigh seems gone: trained again on the same scenes it is level
    with flow2, within 0.01 dB on camera footage and 0.05 dB on the
    tests' scenes (see docs/BENCHMARKS.md).
    """

    features = 14    # input channels of the network, see head_inputs
    width = 12       # channels at 1/4 resolution
    width2 = 24      # channels at 1/8 resolution
    outputs = 1      # the fusion logit m

    def __init__(self):
        super().__init__()
        c, c2 = self.width, self.width2
        # 3x3 convolutions; the coarse branch at 1/8 resolution, dilated,
        # sees some 70 pixels of the 1/4-resolution image around each
        # pixel (280 of the frame), for the context of an occlusion; a
        # 1x1 convolution joins it with the fine branch, which keeps the
        # network at about 7k multiply-adds per 1/4-resolution pixel.
        self.c1 = torch.nn.Conv2d(self.features, c, 3, padding=1)
        self.c2 = torch.nn.Conv2d(c, c2, 3, stride=2, padding=1)
        self.c3 = torch.nn.Conv2d(c2, c2, 3, padding=1)
        self.c4 = torch.nn.Conv2d(c2, c2, 3, padding=2, dilation=2)
        self.c5 = torch.nn.Conv2d(c2, c2, 3, padding=4, dilation=4)
        self.c6 = torch.nn.Conv2d(c2 + c, c, 1)
        self.c7 = torch.nn.Conv2d(c, self.outputs, 3, padding=1)
        torch.nn.init.zeros_(self.c7.weight)
        torch.nn.init.zeros_(self.c7.bias)

    def head(self, x):
        a = F.relu(self.c1(x))
        b = F.relu(self.c2(a))
        b = F.relu(self.c3(b))
        b = F.relu(self.c4(b)) + b
        b = F.relu(self.c5(b)) + b
        b = _upsample(b, 2)
        return self.c7(F.relu(self.c6(torch.cat([a, b], 1))))

    def head_inputs(self, g0, g1, q0, q1, fx, fy, t):
        """The network's input at 1/4 resolution: luma g0, g1 and colour
        difference q0, q1 of the frames, the field fx, fy, t ([N,1,1,1])."""
        grid = _pixel_grid(g0)
        bx, by, px, py = grid
        l0 = _warp(torch.cat([g0, q0], 1), grid, -t * fx, -t * fy)
        l1 = _warp(torch.cat([g1, q1], 1), grid, (1 - t) * fx, (1 - t) * fy)
        tt = t * torch.ones_like(g0)
        # How the field changes, not the field: where it converges or
        # diverges one frame hides what the other shows, and the network
        # sees the same thing whatever the motion's size, so a motion
        # larger than in its training does not take it where it never was.
        fxx, fxy = _gradients(fx)
        fyx, fyy = _gradients(fy)
        return torch.cat([l0, l1, l1[:, :1] - l0[:, :1], g0, g1, fxx, fxy, fyx, fyy, tt], 1)

    def synthesise(self, frame0, frame1, t, fx, fy, k, clamp=False):
        """The frame at t ([N]) from frames [N,3,H,W], flow2's field at
        1/4 resolution and its brightness k ([N,1,1,1]); differentiable in the network's weights. Values
        may leave [0,1] by a little (colour at half resolution), as
        flow's do: the engine clamps them when it stores the frame; clamp
        does it here, for training."""
        t = torch.clamp(t.reshape(-1, 1, 1, 1), 0, 1)
        y0, y1 = _mix_batch(self.to_luma, frame0), _mix_batch(self.to_luma, frame1)
        h0, h1 = F.avg_pool2d(frame0, 2), F.avg_pool2d(frame1, 2)
        c0, c1 = _mix_batch(self.to_chroma, h0), _mix_batch(self.to_chroma, h1)
        g0, g1 = F.avg_pool2d(y0, self.scale), F.avg_pool2d(y1, self.scale)
        q0 = F.avg_pool2d(c0, self.scale // 2)
        q1 = F.avg_pool2d(c1, self.scale // 2)
        m = torch.clamp(self.head(self.head_inputs(g0, g1, q0, q1, fx, fy, t)), -6, 6)
        rgb = self.render(y0, y1, c0, c1, fx, fy, k, t, m)
        return torch.clamp(rgb, 0, 1) if clamp else rgb

    def flow_of(self, frame0, frame1):
        """flow2's field at 1/4 resolution and brightness's k for one
        pair ([1,3,H,W])."""
        return self.motion(_mix(self.to_luma, frame0), _mix(self.to_luma, frame1))

    def forward(self, frame0, frame1, t):
        return self.synthesise(frame0, frame1, t, *self.flow_of(frame0, frame1))

    def load_weights(self, path):
        """Reads the network's weights: little-endian float32, the
        parameters in the order of named_parameters, nothing else."""
        params = list(self.named_parameters())
        total = sum(p.numel() for _, p in params)
        data = np.fromfile(path, dtype="<f4")
        if data.size != total:
            raise SystemExit("%s holds %d floats, the network has %d: run make train" % (path, data.size, total))
        at = 0
        with torch.no_grad():
            for _, p in params:
                n = p.numel()
                p.copy_(torch.from_numpy(data[at:at + n].copy()).reshape(p.shape))
                at += n
        return self

    def save_weights(self, path):
        parts = [p.detach().reshape(-1).numpy().astype("<f4") for _, p in self.named_parameters()]
        np.concatenate(parts).tofile(path)



MODELS = [
    ("flow2", Flow2(),
     "Motion-compensated interpolation: pyramidal optical flow that allows for changes of light, with a "
     "+-96 px motion search and sharp motion boundaries, warping, mixed by t, blurred where the motion is "
     "uncertain; the default."),
    ("flow3", Flow3(),
     "flow2 with a learned fusion: a small network (20k weights, trained here on synthetic scenes) "
     "weighs the two warps per pixel; experimental: level with flow2 on real footage."),
    ("flow", Flow(),
     "Motion-compensated interpolation (pyramidal optical flow and warping, mixed by t; "
     "no motion search); flow2's predecessor, kept for comparison."),
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
    with open(os.path.join(OUT, name + ".json"), "w") as f:
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
    d = os.path.join(OUT, "testdata")
    os.makedirs(d, exist_ok=True)
    h, w = 64, 96
    rng = np.random.default_rng(7)
    big = texture(h + 16, w + 16, rng)
    f0 = big[:, 8:8 + h, 8:8 + w]
    f1 = big[:, 5:5 + h, 10:10 + w]  # the scene moved 2 pixels left, 3 down
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


class Squares(torch.nn.Module):
    """A detector of solid-coloured squares, for the tests of the detect
    path: no weights, only arithmetic, so its boxes are exact.

    Class c is the tensor channel c: a pixel belongs to it when that channel
    is above 0.2 of full intensity and the other two below 0.1. Per image
    and class, the box is the bounding box of those pixels (in input pixels,
    edges: a square covering columns 10..19 spans x 10 to 20) and the score
    is the brightest such pixel's channel value, so a dimmer square scores
    lower. Each found box is emitted more than once, with lower scores, so
    that non-maximum suppression has duplicates to remove:
      yolox   [N, rows, 5+C]: raw grid rows of strides 8, 16 and 32; the cell
              holding the box centre at every stride carries it (objectness
              1, 0.95 and 0.9 times the score; classes one-hot)
      yolov5  [N, 2C, 5+C]: decoded cx, cy, w, h, objectness, classes; per
              class the box, then the box 1 pixel right at 0.9 times the score
      yolov8  [N, 4+C, 2C]: the same candidates, transposed, no objectness
    """

    classes = 3
    size = 128

    def __init__(self, decoder, white):
        super().__init__()
        self.decoder = decoder
        self.white = white

    def boxes(self, images):
        x = images / self.white
        n, _, h, w = x.shape
        masks = []
        for c in range(self.classes):
            others = [x[:, k] for k in range(self.classes) if k != c]
            masks.append((x[:, c] > 0.2) & (torch.maximum(others[0], others[1]) < 0.1))
        mask = torch.stack(masks, 1)  # [N,C,H,W]
        score = torch.amax(x * mask.to(x.dtype), dim=(2, 3))  # [N,C]
        present = score > 0
        xs = torch.arange(w, dtype=x.dtype).reshape(1, 1, 1, w)
        ys = torch.arange(h, dtype=x.dtype).reshape(1, 1, h, 1)
        # Scalars, not full-size constants: the file stays small.
        big = torch.tensor(1e4, dtype=x.dtype)
        x1 = torch.amin(torch.where(mask, xs, big), dim=(2, 3))
        y1 = torch.amin(torch.where(mask, ys, big), dim=(2, 3))
        x2 = torch.amax(torch.where(mask, xs + 1, -big), dim=(2, 3))
        y2 = torch.amax(torch.where(mask, ys + 1, -big), dim=(2, 3))
        zero = torch.zeros_like(score)
        one = torch.ones_like(score)
        cx = torch.where(present, (x1 + x2) / 2, zero)
        cy = torch.where(present, (y1 + y2) / 2, zero)
        bw = torch.where(present, x2 - x1, one)
        bh = torch.where(present, y2 - y1, one)
        return cx, cy, bw, bh, score  # each [N,C]

    def forward(self, images):
        cx, cy, bw, bh, score = self.boxes(images)
        n = images.shape[0]
        eye = torch.eye(self.classes, dtype=images.dtype)
        if self.decoder == "yolox":
            return self.grid(cx, cy, bw, bh, score, eye)
        rows = []
        for c in range(self.classes):
            for shift, factor in ((0.0, 1.0), (1.0, 0.9)):
                box = torch.stack([cx[:, c] + shift, cy[:, c], bw[:, c], bh[:, c]], 1)  # [N,4]
                s = (score[:, c] * factor).reshape(n, 1)
                cls = eye[c].reshape(1, self.classes).expand(n, self.classes)
                if self.decoder == "yolov5":
                    rows.append(torch.cat([box, s, cls], 1))
                else:
                    rows.append(torch.cat([box, s * cls], 1))
        out = torch.stack(rows, 1)  # [N, 2C, 5+C] or [N, 2C, 4+C]
        if self.decoder == "yolov8":
            out = out.transpose(1, 2)
        return out

    def grid(self, cx, cy, bw, bh, score, eye):
        n = cx.shape[0]
        levels = []
        for stride, factor in ((8, 1.0), (16, 0.95), (32, 0.9)):
            g = self.size // stride
            gx = torch.arange(g, dtype=cx.dtype).reshape(1, 1, 1, g)
            gy = torch.arange(g, dtype=cx.dtype).reshape(1, 1, g, 1)
            fx = (cx / stride).reshape(n, self.classes, 1, 1)
            fy = (cy / stride).reshape(n, self.classes, 1, 1)
            s = score.reshape(n, self.classes, 1, 1)
            # The cell holding the centre, for each present class: [N,C,g,g]
            hit = ((torch.floor(fx) == gx) & (torch.floor(fy) == gy) & (s > 0)).to(cx.dtype)
            tx = (hit * (fx - gx)).sum(1)
            ty = (hit * (fy - gy)).sum(1)
            tw = (hit * torch.log(bw / stride).reshape(n, self.classes, 1, 1)).sum(1)
            th = (hit * torch.log(bh / stride).reshape(n, self.classes, 1, 1)).sum(1)
            obj = (hit * s).sum(1) * factor
            cls = hit  # one-hot where hit
            level = torch.cat([torch.stack([tx, ty, tw, th, obj], 1), cls], 1)  # [N,5+C,g,g]
            levels.append(level.reshape(n, 5 + self.classes, g * g))
        return torch.cat(levels, 2).transpose(1, 2)  # [N, rows, 5+C]


# The test detectors: decoder, input preprocessing, whether the batch is free.
DETECTORS = [
    # YOLOX's own preprocessing: BGR, 0..255, top-left letterbox padded 114.
    ("squares-yolox", "yolox", "BGR", 255.0, "top-left", 114, False),
    # Ultralytics-style: RGB, 0..1, centred letterbox padded 114.
    ("squares-yolov5", "yolov5", "RGB", 1.0, "center", 114, True),
    ("squares-yolov8", "yolov8", "BGR", 1.0, "center", 0, True),
]


def export_detector(module, path, batched):
    s = Squares.size
    buf = io.BytesIO()
    dyn = {"images": {0: "batch"}, "output": {0: "batch"}} if batched else None
    with torch.no_grad():
        torch.onnx.export(module, (torch.rand(1, 3, s, s) * module.white,), buf,
                          opset_version=OPSET, input_names=["images"],
                          output_names=["output"], dynamic_axes=dyn,
                          do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    for node in model.graph.node:
        node.doc_string = ""
    model.doc_string = ""
    # The exporter's shape inference loses some output sides; state them,
    # as the registry checks the model's declared output shape.
    with torch.no_grad():
        shape = list(module(torch.zeros(1, 3, s, s)).shape)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for i, d in enumerate(dims):
        if i == 0 and batched:
            d.dim_param = "batch"
        else:
            d.dim_value = shape[i]
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def write_detectors():
    d = os.path.join(OUT, "testdata", "detect")
    os.makedirs(d, exist_ok=True)
    for name, decoder, channels, white, letterbox, pad, batched in DETECTORS:
        module = Squares(decoder, white).eval()
        sha = export_detector(module, os.path.join(d, name + ".onnx"), batched)
        # Class c is tensor channel c, so a BGR model's first class is blue.
        labels = ["red", "green", "blue"]
        if channels == "BGR":
            labels.reverse()
        manifest = {
            "name": name, "kind": "detect", "file": name + ".onnx",
            "description": "Finds solid red, green and blue squares (%s layout; a test model)." % decoder,
            "decoder": decoder, "channels": channels, "range": [0, int(white)],
            "letterbox": letterbox, "pad": pad, "labels": labels,
            "score_threshold": 0.25, "iou_threshold": 0.45, "sha256": sha,
        }
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        print("%s.onnx sha256 %s" % (name, sha), file=sys.stderr)


class Sharp2x(torch.nn.Module):
    """The tests' frame model: a fixed-size 2x upscaler that behaves like a
    small super-resolution network where the tests can see it, with no
    trained weights, so Go can compute its exact output independently:

      up   bilinear 2x (half-pixel centres, edges clamped), as
           F.interpolate(scale_factor=2, mode="bilinear") computes it;
      y    a 3x3 sharpening kernel per channel (centre 1.8, the four
           neighbours -0.2) with zero padding, as convolutional networks
           pad: a tile's outermost pixels come out darker, so tiling without
           overlap leaves visible seams;
      out  clamp(y * GAIN[c] + BIAS[c], 0, 1): a different gain and offset
           per channel, so swapped channels or a wrong value range show.
    """

    height, width = 64, 96
    GAIN = (1.0, 0.9, 0.8)
    BIAS = (0.0, 0.05, 0.1)

    def __init__(self):
        super().__init__()
        k = torch.tensor([[0.0, -0.2, 0.0], [-0.2, 1.8, -0.2], [0.0, -0.2, 0.0]])
        self.register_buffer("kernel", k.reshape(1, 1, 3, 3).repeat(3, 1, 1, 1))
        self.register_buffer("gain", torch.tensor(self.GAIN).reshape(1, 3, 1, 1))
        self.register_buffer("bias", torch.tensor(self.BIAS).reshape(1, 3, 1, 1))

    def forward(self, image):
        up = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.conv2d(up, self.kernel, padding=1, groups=3)
        return torch.clamp(y * self.gain + self.bias, 0, 1)


def write_frame_model():
    d = os.path.join(OUT, "testdata", "frame")
    os.makedirs(d, exist_ok=True)
    module = Sharp2x().eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (torch.rand(1, 3, module.height, module.width),), buf,
                          opset_version=OPSET, input_names=["image"],
                          output_names=["upscaled_image"], do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    for node in model.graph.node:
        node.doc_string = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(os.path.join(d, "sr2x.onnx"), "wb") as f:
        f.write(data)
    sha = hashlib.sha256(data).hexdigest()
    # Only the required fields and the checksum: the rest (tensor names,
    # the fixed input size, the scale) is read from the model.
    manifest = {
        "name": "sr2x", "kind": "frame", "file": "sr2x.onnx",
        "description": "Bilinear 2x, sharpened, with a gain and offset per channel (a test model).",
        "sha256": sha,
    }
    with open(os.path.join(d, "sr2x.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("sr2x.onnx sha256 %s" % sha, file=sys.stderr)


def main():
    global OUT
    ap = argparse.ArgumentParser(description="Builds img2vid's built-in models.")
    ap.add_argument("--out", default=HERE, help="folder to write into (default: this script's)")
    OUT = os.path.abspath(ap.parse_args().out)
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name, module, description in MODELS:
        if isinstance(module, Flow3):
            module.load_weights(os.path.join(HERE, name + ".weights"))
        module.eval()
        sha = export(module, os.path.join(OUT, name + ".onnx"))
        write_manifest(name, description, module.multiple, sha)
        print("%s.onnx sha256 %s" % (name, sha), file=sys.stderr)
    write_reference(MODELS)
    write_detectors()
    write_frame_model()


if __name__ == "__main__":
    main()
