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

The flow models are two graphs each: NAME.motion.onnx takes frame0 and
frame1 (float32 [1,3,H,W], RGB in [0,1]) and returns their motion (the
manifest's motion.outputs), once per pair; NAME.onnx takes frame0, frame1,
t (float32 [1]) and the motion and returns frame (float32 [1,3,H,W]), once
per new frame. blend is one graph of frame0, frame1 and t. H and W are free,
multiples of the manifest's "multiple".

The graphs are built for ONNX Runtime on a CPU or a GPU: every operation is
a whole-tensor operator (pyramids by pooling, gradients and shifts by Conv,
candidate searches batched, warps by GridSample), the sides are never
computed in the graph (no Shape nodes: constant slice bounds, reshapes that
copy the sides, pixel positions by cumulative sums), and constants are
initializers, so a graph is a few hundred nodes that the CUDA provider runs
whole.
"""

import argparse
import hashlib
import io
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = HERE  # where the files are written; --out changes it
OPSET = 17  # GridSample arrived in opset 16; the CUDA provider runs it too.


class Blend(torch.nn.Module):
    """Cross-fade: what a video editor's dissolve does, motion ignored."""

    multiple = 1

    def forward(self, frame0, frame1, t):
        t = t.reshape(1, 1, 1, 1)
        return torch.clamp((1 - t) * frame0 + t * frame1, 0, 1)


def _regroup(c):
    """A torch Function that reshapes x [N,C,h,w] to [-1,c,h,w], exported
    as one Reshape whose target (-1, c, 0, 0) copies h and w from its
    input, so no Shape, Gather or Concat nodes work out the sides at run
    time. One class per c: the exporter takes tensors only as arguments."""

    class Regroup(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.reshape(-1, c, x.shape[2], x.shape[3])

        @staticmethod
        def symbolic(g, x):
            return g.op("Reshape", x, g.op("Constant", value_t=torch.tensor([-1, c, 0, 0], dtype=torch.int64)))

    return Regroup


_REGROUP = {}


def _channels(x, c):
    """x [N,C,h,w] as [N*C/c, c, h, w], the channels regrouped by c. The
    Function is for the export only: torch's own reshape is differentiable,
    which training needs."""
    c = int(c)
    if not torch.jit.is_tracing():
        return x.reshape(-1, c, x.shape[2], x.shape[3])
    if c not in _REGROUP:
        _REGROUP[c] = _regroup(c)
    return _REGROUP[c].apply(x)


def _edge_pad(r):
    """A torch Function that pads x [N,C,h,w] by r pixels on every side,
    repeating the edge, exported as one Pad with constant pads (torch's
    own export of F.pad works the pads out at run time)."""

    class EdgePad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return F.pad(x, (r, r, r, r), mode="replicate")

        @staticmethod
        def symbolic(g, x):
            pads = g.op("Constant", value_t=torch.tensor([0, 0, r, r, 0, 0, r, r], dtype=torch.int64))
            return g.op("Pad", x, pads, mode_s="edge")

    return EdgePad


_PAD = {}


def _pad(x, r):
    """x [N,C,h,w] with its edges repeated r pixels outwards (the Function
    for the export only, as in _channels)."""
    if not torch.jit.is_tracing():
        return F.pad(x, (r, r, r, r), mode="replicate")
    if r not in _PAD:
        _PAD[r] = _edge_pad(r)
    return _PAD[r].apply(x)


# The moves by -f/2 and +f/2 of a field f twice over (torch.cat([f, f], 1)).
_HALVES = torch.tensor([-0.5, -0.5, 0.5, 0.5]).reshape(1, 4, 1, 1)


class Grid:
    """The pixels of an image like like ([N,C,h,w], any N): their indices
    pos ([1,2,h,w], x then y), the image's sides size ([1,2,1,1], w, h), and
    what GridSample (align_corners=False) needs: the pixel centres base in
    its units, which run from -1 to 1 across the image's outer edges, the
    size of a pixel there (unit), and the centres of the outermost pixels
    (lo, hi). All from cumulative sums over a row and a column of ones, so
    the graph holds no shape arithmetic and runs wholly on an accelerator.
    A separable grid has no whole base or pos: each warp adds the field to
    the row and the column of centres, which at full resolution is cheaper
    than a base made once and read once."""

    def __init__(self, like, separable=False):
        if int(like.shape[0]) > 1 or int(like.shape[1]) > 1:
            like = like[:1, :1]
        if separable:
            cx = torch.cumsum(like[:, :, :1] * 0 + 1, 3)     # [1,1,1,w]: 1..w
            cy = torch.cumsum(like[:, :, :, :1] * 0 + 1, 2)  # [1,1,h,1]: 1..h
            self.size = torch.cat([cx[:, :, :, -1:], cy[:, :, -1:]], 1)
        else:
            one = like * 0 + 1
            cx, cy = torch.cumsum(one, 3), torch.cumsum(one, 2)
            self.size = torch.cat([cx.amax(dim=(2, 3), keepdim=True), cy.amax(dim=(2, 3), keepdim=True)], 1)
        self.unit = 2 / self.size
        self.lo, self.hi = self.unit / 2 - 1, 1 - self.unit / 2
        if separable:
            self.bx, self.by = (cx - 0.5) * self.unit[:, :1] - 1, (cy - 0.5) * self.unit[:, 1:] - 1
        else:
            self.pos = torch.cat([cx, cy], 1) - 1
            self.base = (self.pos + 0.5) * self.unit - 1
        self.separable = separable
        self._half = {}

    def warp(self, img, f):
        """img ([N,C,h,w]) sampled bilinearly at each pixel moved by f
        ([N,2,h,w], pixels; N of img and f alike); a position outside the
        image takes its nearest edge. The positions are clamped to the
        outer pixels' centres and sampled with zero padding, the same
        thing: ONNX Runtime's CPU GridSample does zero padding faster."""
        if self.separable:
            u = self.unit
            return self.sample(img, torch.cat([self.bx + f[:, :1] * u[:, :1], self.by + f[:, 1:] * u[:, 1:]], 1))
        return self.sample(img, self.base + f * self.unit)

    def halves(self, k):
        """The factor ([2K,1,1,1]) that turns K fields, twice over
        (torch.cat([f, f])), into the moves by -f/2 of the first K and +f/2
        of the second K, in GridSample's units."""
        if k not in self._half:
            sign = torch.tensor([-0.5] * k + [0.5] * k).reshape(2 * k, 1, 1, 1)
            self._half[k] = sign * self.unit
        return self._half[k]

    def pair(self, ab, f):
        """a and b (ab: K copies of a, then K of b) sampled at each pixel
        moved by -f/2 and +f/2 (f [K,2,h,w], pixels), by one GridSample."""
        k = int(f.shape[0])
        w = self.sample(ab, self.base + torch.cat([f, f], 0) * self.halves(k))
        return w[:k], w[k:]

    def sample(self, img, g):
        """img sampled at positions g ([N,2,h,w]) in GridSample's units."""
        g = torch.minimum(torch.maximum(g, self.lo), self.hi)
        return F.grid_sample(img, g.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def outside(self, f):
        """How far, in pixels along x plus along y, each pixel moved by
        -f/2 and by +f/2 (f [K,2,h,w]) lies outside the image, the two
        summed; 0 inside. A position p is relu(|p - c| - c) outside, c the
        image's centre, (size - 1)/2."""
        if not hasattr(self, "_centred"):
            c = (self.size - 1) / 2
            self._centred = (torch.cat([self.pos, self.pos], 1) - torch.cat([c, c], 1), torch.cat([c, c], 1))
        pc, c = self._centred
        return F.relu(torch.abs(pc + torch.cat([f, f], 1) * _HALVES) - c).sum(dim=1, keepdim=True)

    def inside(self, f):
        """1 where each pixel moved by f lies within the image, else 0."""
        p = self.pos + f
        return ((p >= 0) & (p <= self.size - 1)).to(f.dtype).amin(dim=1, keepdim=True)


def _box(x, r):
    """Mean over the (2r+1)^2 window around each pixel, edges repeated."""
    return _mean(_pad(x, r), r)


def _inner_box(x, r):
    """Mean over the part of the (2r+1)^2 window around each pixel that is
    inside the image: one node, where _box takes two."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def _mean(p, r):
    """_box of an image already padded by r (p): repeated edges commute
    with every pixel-wise operation, so products of padded images are the
    padded products, and one Pad serves several means."""
    return F.avg_pool2d(p, 2 * r + 1, stride=1)


def _taps(offsets):
    """Conv weights [K,1,2r+1,2r+1] that copy a one-channel image moved by
    each (dx, dy) in offsets: out(x, y) = in(x+dx, y+dy); and r."""
    r = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    k = np.zeros((len(offsets), 1, 2 * r + 1, 2 * r + 1), np.float32)
    for i, (dx, dy) in enumerate(offsets):
        k[i, 0, r + dy, r + dx] = 1
    return torch.from_numpy(k), r


def _shifted(x, offsets):
    """Every channel of x ([N,C,h,w]) moved by whole pixels by each offset,
    edges repeated, all at once (one Conv): [N*C, K, h, w]."""
    k, r = _taps(offsets)
    return F.conv2d(_pad(_channels(x, 1), r), k)


_NEIGHBOURS9 = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def _median9(x):
    """3x3 median of every pixel of x ([N,C,h,w]), edges repeated: the
    fifth largest of the nine (TopK). It keeps a motion boundary sharp
    where a mean would smear it, and drops isolated wrong vectors."""
    top = torch.topk(_shifted(x, _NEIGHBOURS9), 5, dim=1).values
    return _channels(top.amin(dim=1, keepdim=True), int(x.shape[1]))


_CENTRAL = torch.tensor([[[[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]]], [[[0, -0.5, 0], [0, 0, 0], [0, 0.5, 0]]]])


# Conv weights [3,2,3,3] that take two images w0, w1 as channels to the
# central differences along x and y of their mean, and to w1 - w0.
_GRADIENTS_AND_DIFFERENCE = torch.cat([_CENTRAL.repeat(1, 2, 1, 1) * 0.5,
                                       torch.tensor([[[[0, 0, 0], [0, -1, 0], [0, 0, 0]],
                                                      [[0, 0, 0], [0, 1, 0], [0, 0, 0]]]])], 0)


def _gradients(x):
    """Central differences along x and y of a one-channel x ([N,1,h,w]),
    edges repeated: [N,2,h,w]."""
    return F.conv2d(_pad(x, 1), _CENTRAL)


def _upsample(x, s):
    return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)


def _pool(x, s):
    return F.avg_pool2d(x, s)


def _cut(p, r, dx, dy):
    """From p, an image padded by r on every side, the image moved by whole
    pixels: out(x, y) = in(x+dx, y+dy). Constant slice bounds counted from
    both ends, so the graph holds no shape arithmetic."""
    def span(d):
        end = r - d
        return slice(r + d, -end if end else None)
    return p[:, :, span(dy), span(dx)]


# Rec. 601 luma from RGB, and the green of RGB from the colour differences
# R-Y and B-Y: G = Y - (0.299 (R-Y) + 0.114 (B-Y)) / 0.587.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
_GREEN = torch.tensor([-0.299 / 0.587, -0.114 / 0.587]).reshape(1, 2, 1, 1)


def _luma(x):
    """Luma ([N,1,h,w]) of RGB x ([N,3,h,w]), by weighted sum: elementwise
    work, where a 1x1 Conv would make ONNX Runtime's CPU provider reorder
    three channels into blocks of eight and back."""
    return (x * _LUMA).sum(dim=1, keepdim=True)


def _chroma(x):
    """The colour differences R-Y and B-Y ([N,2,h,w]) of RGB x."""
    return x[:, [0, 2]] - _luma(x)


def _rgb(y, c):
    """RGB ([N,3,h,w]) from luma y and colour differences c (R-Y, B-Y)."""
    return y + torch.cat([c[:, :1], (c * _GREEN).sum(dim=1, keepdim=True), c[:, 1:]], 1)


def _field_at(grid, f, t):
    """The field f ([N,2,h,w], pixels) moved from midway between the frames,
    where it is estimated, to time t ([N,1,1,1]): the vector through x at
    t is that at x+(1/2-t)v midway, one fixed-point step of it, sampled
    bilinearly; at t=1/2 it changes nothing."""
    return grid.warp(f, (0.5 - t) * f)


def _at_time(grid, x0, x1, v, t, weight=None):
    """x0 moved back by t*v and x1 forward by (1-t)*v (v [N,2,h,w] in
    pixels of x0) to time t, and mixed: x1 weighs weight ([N,1,h,w]), t
    where not given. Two GridSamples, not one of both frames: batching them
    would copy both frames first."""
    w0, w1 = grid.warp(x0, -t * v), grid.warp(x1, (1 - t) * v)
    return w0 + (t if weight is None else weight) * (w1 - w0)


def _weight(m, t):
    """The weight of frame1's warp that fusion logit m gives t:
    t*e^m / (t*e^m + 1-t); t where m is 0, 0 at t=0 and 1 at t=1."""
    a = t * torch.exp(m)
    return a / (a + 1 - t)


class Flow(torch.nn.Module):
    """Motion-compensated interpolation, in two graphs: motion, once per
    pair of frames, and synthesis, once per new frame.

    Motion is one symmetric flow field v on luma at 1/4 resolution,
    centred between the frames: frame0 at x - v/2 matches frame1 at
    x + v/2. Estimated at the half-way point it gives, for every output
    pixel, the motion through it, so no forward splatting or hole filling
    is needed. The estimator is pyramidal Lucas-Kanade with its
    iterations unrolled (4 levels, 1/4 to 1/32 resolution, a few
    Gauss-Newton steps per level on a 7x7 window), a small Tikhonov term
    keeping the solve stable where there is no texture, where the field
    stays what the coarser levels said.

    Synthesis warps luma at full resolution and colour difference (R-Y,
    B-Y) at half, as 4:2:0 video carries them, and mixes the warps by t.
    """

    # Four halvings below the 1/4-resolution base: H and W multiples of 32.
    multiple = 32
    scale = 4        # flow is estimated at 1/scale of the frame size
    levels = 4       # pyramid levels from 1/scale down
    iterations = 3   # Gauss-Newton steps per level
    window = 3       # Lucas-Kanade window radius (7x7)
    tikhonov = 1e-5  # regulariser of the normal equations, in luma^2
    max_step = 1     # largest update per iteration, in pixels of the level
    motion_outputs = ("flow",)

    def __init__(self):
        super().__init__()
        self._grids = {}

    def mismatch(self, ab, grid, f, window):
        """Local mean absolute difference of the frames warped by -f/2 and
        +f/2: ab is the K candidates' a then b ([2K,1,h,w]), f [K,2,h,w]."""
        w0, w1 = grid.pair(ab, f)
        return _box(torch.abs(w1 - w0), window)

    def refine(self, grid, a, b, f, offset=None, iterations=None):
        """Gauss-Newton steps from the fields f ([K,2,h,w]) on luma a, b
        ([1,1,h,w]), for all K at once. Where offset ([K,1,1,1], 1 or 0) is
        1, each step also solves for a brightness offset between the
        frames over its window: a change of light (exposure, flicker,
        light through water) is locally an offset, which the plain
        equations read as motion wherever the image is smooth. With the
        offset an unknown, the normal equations are the plain ones over
        the window's deviations from their means."""
        k, r = int(f.shape[0]), self.window
        ab = torch.cat([a] * k + [b] * k, 0)
        tik = torch.tensor([self.tikhonov, self.tikhonov, 0, 0, 0]).reshape(1, 5, 1, 1)
        first, second = [0, 1, 0, 0, 1], [0, 1, 1, 2, 2]  # xx, yy, xy, xt, yt
        for _ in range(iterations or self.iterations):
            # The two warps side by side as channels, [K,2,h,w], and from
            # them by one Conv gx, gy (of their mean: moving both by +-d/2
            # changes w1 - w0 by grad . d) and gt = w1 - w0.
            w = grid.sample(ab, grid.base + torch.cat([f, f], 0) * grid.halves(k))
            q = F.conv2d(_pad(_channels(w, k).transpose(0, 1), 1), _GRADIENTS_AND_DIFFERENCE)
            q = _pad(q, r)
            s = _mean(q[:, first] * q[:, second], r)
            if offset is not None:
                m = _mean(q, r)
                m = m[:, first] * m[:, second]
                s = s - (m if offset is True else offset * m)
            s = s + tik
            # xy*yt - yy*xt, xy*xt - xx*yt (the solve's numerators) and
            # xx*yy - xy*xy (its determinant), at once.
            n = s[:, [2, 2, 0]] * s[:, [4, 3, 1]] - s[:, [1, 0, 2]] * s[:, [3, 4, 2]]
            # A step of at most a pixel: a larger one means the
            # linearisation failed (an occlusion, a change of light), and
            # the coarser estimate is safer.
            f = _inner_box(f + torch.clamp(n[:, :2] / n[:, 2:], -self.max_step, self.max_step), 1)
        return f

    def pyramid(self, g):
        p = [g]
        for _ in range(self.levels - 1):
            p.append(_pool(p[-1], 2))
        return p

    def estimate(self, g0, g1):
        """The symmetric field between luma g0 and g1, in their pixels."""
        p0, p1 = self.pyramid(g0), self.pyramid(g1)
        f = self.refine(self.grid(p0[-1]), p0[-1], p1[-1], torch.cat([p0[-1], p0[-1]], 1) * 0)
        for level in range(self.levels - 2, -1, -1):
            a, b = p0[level], p1[level]
            grid = self.grid(a)
            f = _upsample(f, 2) * 2
            # Where the coarser level was misled (detail that pooling
            # aliased, a small object against a moving background),
            # starting again from rest matches better: per pixel, keep
            # whichever of the two explains the frames better.
            two = torch.cat([f, f * 0], 0)
            cost = self.mismatch(torch.cat([a, a, b, b], 0), grid, two, self.window)
            f = f * (cost[:1] <= cost[1:]).to(f.dtype)
            f = self.refine(grid, a, b, f)
        return f

    def luma(self, frame):
        return _luma(frame)

    def grid(self, like, separable=False):
        """The Grid of images of like's size, made once per graph (see
        fresh)."""
        key = (int(like.shape[2]), int(like.shape[3]), separable)
        if key not in self._grids:
            self._grids[key] = Grid(like, separable)
        return self._grids[key]

    def fresh(self):
        """Forgets the grids of the last graph: each motion or synthesis
        makes its own, once per image size."""
        self._grids = {}

    def motion(self, frame0, frame1):
        """The midway field ([1,2,h/4,w/4], pixels there) of a pair of frames."""
        self.fresh()
        g0, g1 = _pool(self.luma(frame0), self.scale), _pool(self.luma(frame1), self.scale)
        return (self.estimate(g0, g1),)

    def synthesis(self, frame0, frame1, t, f):
        """The frame at t ([N]) from frames [N,3,H,W] and their field."""
        self.fresh()
        t = torch.clamp(t.reshape(-1, 1, 1, 1), 0, 1)
        y0, y1 = self.luma(frame0), self.luma(frame1)
        c0, c1 = _chroma(_pool(frame0, 2)), _chroma(_pool(frame1, 2))
        s = self.scale
        y = _at_time(self.grid(y0, separable=True), y0, y1, _upsample(f, s) * s, t)
        c = _at_time(self.grid(c0), c0, c1, _upsample(f, s // 2) * (s // 2), t)
        return _rgb(y, _upsample(c, 2))

    def forward(self, frame0, frame1, t):
        return self.synthesis(frame0, frame1, t, *self.motion(frame0, frame1))


# The whole-pixel moves a choice among neighbouring vectors looks at,
# r pixels away: left, right, up, down.
def _cross(r):
    return [(-r, 0), (r, 0), (0, -r), (0, r)]


class Flow2(Flow):
    """Motion-compensated interpolation that follows large motion, allows
    for changes of light and keeps motion boundaries sharp; the default.

    Flow's estimator and synthesis, with these changes:
    - At the coarsest level, a search of every whole-pixel symmetric
      displacement within +-search (+-96 px of the frame), all at once;
      the best and rest are each refined with and without a brightness
      offset per window, and the four compete per pixel.
    - At each finer level, candidates rather than one guess: the upsampled
      coarse field, rest, and the coarse field two pixels away in each
      direction, the one that matches the frames best kept, then refined
      with the offset; a 3x3 median after each level keeps boundaries
      sharp; a last choice among the vectors 8 pixels away replaces one
      grossly wrong, only where it explains the frames clearly better.
    - Every choice charges a candidate for how far its matches fall
      outside the frame, where repeated edge pixels can agree by chance.
    - Where the frames' brightness as a whole differs by more than 3 %,
      their luma is first brought to the same brightness (brightness).
    - Synthesis picks each pixel's vector at 1/2 resolution among its own
      and its nearest neighbours', the one whose warps agree best (pick),
      instead of blending vectors of two motions at a boundary, and blurs
      the frame where the field is uncertain (spread).
    Measurements of each choice are in docs/BENCHMARKS.md.
    """

    search = 3         # coarse search radius in pixels of the coarsest level
    spread_window = 1  # radius at 1/4 resolution over which the field's spread is measured (3x3)
    steps = 8          # diffusion steps, at most 1/4 each
    light_floor = 0.03  # brightness ratios within 3 % count as no change of light
    brightness_iterations = 2  # Gauss-Newton steps of the field that pairs pixels for brightness
    outside_cost = 0.01  # mismatch (luma) a candidate pays per pixel its match falls outside the frame
    motion_outputs = ("flow", "k")

    def choose(self, grid, a, b, cands, window, stay=0.0):
        """Per pixel, the candidate of cands ([K,2,h,w]) that explains luma
        a and b ([1,1,h,w]) best over a (2*window+1)^2 window; with stay,
        another must be better than the first by that factor (1+stay)."""
        k = int(cands.shape[0])
        w0, w1 = grid.pair(torch.cat([a] * k + [b] * k, 0), cands)
        out = grid.outside(cands)
        cost = _inner_box(torch.abs(w1 - w0), window) + self.outside_cost * out
        if stay:
            cost = cost * torch.tensor([1.0] + [1.0 + stay] * (k - 1)).reshape(k, 1, 1, 1)
        best = torch.argmin(cost, dim=0, keepdim=True)
        return torch.gather(cands, 0, torch.cat([best, best], 1))

    def coarse_search(self, grid, a, b):
        """The best whole-pixel symmetric displacement per pixel within
        +-search, a bias towards smaller motion breaking near-ties (where
        there is no texture, rest is the safest answer)."""
        s = self.search
        d = torch.tensor([[dx, dy] for dy in range(-s, s + 1) for dx in range(-s, s + 1)], dtype=torch.float32)
        k = d.shape[0]
        d = d.reshape(k, 2, 1, 1)
        cost = self.mismatch(torch.cat([a] * k + [b] * k, 0), grid, d, self.window)
        cost = cost + 1e-3 * d.abs().sum(dim=1, keepdim=True)
        best = torch.argmin(cost, dim=0, keepdim=True)
        return torch.gather(d + cost * 0, 0, torch.cat([best, best], 1))

    def coarsest(self, a, b, iterations=None):
        """The field at the coarsest level: the search's answer and rest,
        each refined with and without the brightness offset, compete."""
        grid = self.grid(a)
        s = self.coarse_search(grid, a, b)
        f = self.refine(grid, a, b, torch.cat([s, s * 0, s, s * 0], 0),
                        torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(4, 1, 1, 1), iterations)
        return self.choose(grid, a, b, _median9(f), self.window)

    def brightness(self, g0, g1):
        """k ([1,1,1,1]) such that luma g0*k and g1/k (1/4 resolution) are
        as bright, where the frames' brightness differs by more than
        light_floor. The ratio is
        that of the mean brightness over what both frames show, paired by
        the coarsest field (found on frames brought to the same mean) at
        1/8 resolution; its log is shrunk towards 0 by light_floor, as the
        estimate errs by up to 2 % where the light does not change."""
        m0 = g0.mean(dim=(1, 2, 3), keepdim=True)
        m1 = g1.mean(dim=(1, 2, 3), keepdim=True)
        m = (m0 + m1) / 2
        k = 2 ** (self.levels - 1)
        f = self.coarsest(_pool(g0 * (m / m0), k), _pool(g1 * (m / m1), k), self.brightness_iterations)
        a, b = _pool(g0, 2), _pool(g1, 2)
        f = _upsample(f, k // 2) * (k // 2)
        grid = self.grid(a)
        w0, w1 = grid.pair(torch.cat([a, b], 0), f)
        both = grid.inside(f * 0.5) * grid.inside(f * -0.5)
        n = both.sum(dim=(1, 2, 3), keepdim=True) + 1e-6
        r = torch.log(((w1 * both).sum(dim=(1, 2, 3), keepdim=True) / n + 1e-6)
                      / ((w0 * both).sum(dim=(1, 2, 3), keepdim=True) / n + 1e-6))
        r = torch.sign(r) * F.relu(torch.abs(r) - self.light_floor)
        return torch.exp(r / 2)

    def estimate(self, g0, g1):
        p0, p1 = self.pyramid(g0), self.pyramid(g1)
        f = self.coarsest(p0[-1], p1[-1])
        for level in range(self.levels - 2, -1, -1):
            a, b = p0[level], p1[level]
            grid = self.grid(a)
            up = _upsample(f, 2) * 2
            p = _pad(up, 2)
            cands = torch.cat([up, up * 0] + [_cut(p, 2, dx, dy) for dx, dy in _cross(2)], 0)
            f = _median9(self.refine(grid, a, b, self.choose(grid, a, b, cands, self.window), True))
        # A vector 8 pixels away (32 of the frame), over a smaller window,
        # replaces one that is grossly wrong (a wrong match that the
        # pyramid carried down), only where clearly better.
        p = _pad(f, 8)
        cands = torch.cat([f] + [_cut(p, 8, dx, dy) for dx, dy in _cross(8)], 0)
        return self.choose(self.grid(g0), g0, g1, cands, 2, stay=0.5)

    def motion(self, frame0, frame1):
        """The midway field at 1/4 resolution and brightness's k."""
        self.fresh()
        g0, g1 = _pool(self.luma(frame0), self.scale), _pool(self.luma(frame1), self.scale)
        k = self.brightness(g0, g1)
        return self.estimate(g0 * k, g1 / k), k

    def pick(self, h0, h1, f, t):
        """The field at 1/2 resolution, in its pixels: per pixel, of the
        vector of its 1/4-resolution pixel and those of the two
        1/4-resolution pixels nearest to it across and down, the one that
        warps luma h0 and h1 ([N,1,h,w], 1/2 resolution) to time t most
        alike. That puts a motion boundary within a pixel or two of where
        the frames put it, where bilinear upsampling would blend two
        motions into vectors of neither. f is the field at t, so a
        boundary is looked for where it is at t."""
        n = int(h0.shape[0])
        own = F.interpolate(f * 2, scale_factor=2, mode="nearest")
        grid = self.grid(own)
        # 1 for the second pixel of each 2x2 block across (down), whose
        # nearer neighbour is to the right (below).
        second = grid.pos - 2 * torch.floor(grid.pos / 2)
        p = _pad(own, 2)
        left, right, up, down = [_cut(p, 2, dx, dy) for dx, dy in _cross(2)]
        across = left + second[:, :1] * (right - left)
        down = up + second[:, 1:] * (down - up)
        v = torch.cat([own, across, down], 0)
        tt = torch.cat([t] * 3, 0)
        w = grid.warp(torch.cat([h0, h0, h0, h1, h1, h1], 0), torch.cat([-tt * v, (1 - tt) * v], 0))
        d = torch.abs(w[3 * n:] - w[:3 * n])
        d0, d1, d2 = d[:n], d[n:2 * n], d[2 * n:]
        first = (d0 <= d1) & (d0 <= d2)
        return torch.where(first, own, torch.where(d1 <= d2, across, down))

    def spread(self, f, t):
        """The diffusion per step (see diffuse) at 1/4 resolution, in pixels
        of the frame, times 3: t(1-t)/2 times the variance of the field (at
        time t) over the window, both axes summed, at most 1/4 a step.
        Where the vectors around a pixel disagree, which is right is a
        guess; the frame that errs least in squared error is the mean of
        the warps over them, to second order the sharp warp under a
        Gaussian blur of that variance. (One blend of the sharp frame with
        a fixed blur instead of the steps lost 0.03 dB at 2x and 0.13 dB at
        4x on the aquarium clip.)"""
        r = self.spread_window
        m = _box(f, r)
        var = (_box(f * f, r) - m * m).sum(dim=1, keepdim=True) * (self.scale ** 2 / 2)
        return 3 * torch.clamp(var * (t * (1 - t) / 2), 0, 0.25 * self.steps) / self.steps

    def diffuse(self, x, d):
        """x after `steps` explicit steps of the heat equation, each by d/3
        (at most 1/4): x + d*(3x3 mean - x), so a weighted mean with
        weights >= 0 that neither rings nor overshoots."""
        for _ in range(self.steps):
            x = x + d * (_box(x, 1) - x)
        return x

    def render(self, y0, y1, c0, c1, f, k, t, m=None):
        """The frame at t ([N,1,1,1]) from luma y0, y1 and colour
        difference c0, c1 (1/2 resolution) and the midway field f (1/4
        resolution, pixels): the field moved to t, picked at 1/2
        resolution (on luma made as bright by k), both frames warped by it
        and mixed by t or, where m (flow3's fusion logit at 1/4
        resolution) is given, by the weight m gives t; then blurred where
        the field is uncertain. RGB [N,3,H,W]."""
        f = _field_at(self.grid(f), f, t)
        h0, h1 = _pool(y0, 2) * k, _pool(y1, 2) / k
        v = self.pick(h0, h1, f, t)
        wy = wc = None
        if m is not None:
            wy, wc = _weight(_upsample(m, self.scale), t), _weight(_upsample(m, self.scale // 2), t)
        y = _at_time(self.grid(y0, separable=True), y0, y1, F.interpolate(v * 2, scale_factor=2, mode="nearest"), t, wy)
        c = _at_time(self.grid(c0), c0, c1, v, t, wc)
        d = self.spread(f, t)
        # The same blur in pixels of the frame is a quarter of the
        # variance in pixels of the half-resolution colour.
        y = self.diffuse(y, _upsample(d, self.scale))
        c = self.diffuse(c, _upsample(d, self.scale // 2) * 0.25)
        return _rgb(y, _upsample(c, 2))

    def synthesis(self, frame0, frame1, t, f, k):
        self.fresh()
        t = torch.clamp(t.reshape(-1, 1, 1, 1), 0, 1)
        y0, y1 = self.luma(frame0), self.luma(frame1)
        c0, c1 = _chroma(_pool(frame0, 2)), _chroma(_pool(frame1, 2))
        return self.render(y0, y1, c0, c1, f, k, t)


class Flow3(Flow2):
    """flow2's motion with a learned fusion: a small convolutional network
    at 1/4 resolution decides, per pixel, how much of each warped frame to
    take.

    The network sees, at 1/4 resolution, both frames warped to time t by
    flow2's field (luma and colour difference), their difference, both
    frames unwarped, how the field changes, and t: the cues of occlusion
    and of where the field is wrong. It predicts m, a fusion logit:
    frame1's warp gets weight t*e^m / (t*e^m + 1-t), which is t where
    m = 0, 0 at t=0 and 1 at t=1 whatever m is. The last layer starts at
    zero, where the model is flow2 exactly; the weights are trained by
    train_flow3.py on synthetic scenes made there (never on evaluation
    footage) and read from flow3.weights.
    """

    motion_of = "flow2"  # its motion graph is flow2's, the same file
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


    def head_inputs(self, g0, g1, q0, q1, f, t):
        """The network's input at 1/4 resolution: luma g0, g1 and colour
        difference q0, q1 of the frames, the field f, t ([N,1,1,1])."""
        n = int(g0.shape[0])
        grid = self.grid(g0)
        w = grid.warp(torch.cat([torch.cat([g0, q0], 1), torch.cat([g1, q1], 1)], 0),
                      torch.cat([-t * f, (1 - t) * f], 0))
        l0, l1 = w[:n], w[n:]
        # How the field changes, not the field: where it converges or
        # diverges one frame hides what the other shows, and the network
        # sees the same thing whatever the motion's size.
        change = _channels(_gradients(_channels(f, 1)), 4)  # fx by x, by y; fy by x, by y
        return torch.cat([l0, l1, l1[:, :1] - l0[:, :1], g0, g1, change, g0 * 0 + t], 1)

    def synthesise(self, frame0, frame1, t, f, k, clamp=False):
        """The frame at t ([N]) from frames [N,3,H,W], flow2's field at 1/4
        resolution and its brightness k ([N,1,1,1]); differentiable in the
        network's weights. Values may leave [0,1] by a little (colour at
        half resolution): the engine clamps them when it stores the
        frame; clamp does it here, for training."""
        self.fresh()
        t = torch.clamp(t.reshape(-1, 1, 1, 1), 0, 1)
        y0, y1 = self.luma(frame0), self.luma(frame1)
        c0, c1 = _chroma(_pool(frame0, 2)), _chroma(_pool(frame1, 2))
        g0, g1 = _pool(y0, self.scale), _pool(y1, self.scale)
        q0, q1 = _pool(c0, self.scale // 2), _pool(c1, self.scale // 2)
        m = torch.clamp(self.head(self.head_inputs(g0, g1, q0, q1, f, t)), -6, 6)
        rgb = self.render(y0, y1, c0, c1, f, k, t, m)
        return torch.clamp(rgb, 0, 1) if clamp else rgb

    def synthesis(self, frame0, frame1, t, f, k):
        return self.synthesise(frame0, frame1, t, f, k)

    def flow_of(self, frame0, frame1):
        """flow2's field at 1/4 resolution and brightness's k for one pair
        ([1,3,H,W])."""
        return self.motion(frame0, frame1)

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


class _Motion(torch.nn.Module):
    """A model's motion graph: frame0, frame1 in, its motion_outputs out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frame0, frame1):
        return self.model.motion(frame0, frame1)


class _Synthesis(torch.nn.Module):
    """A model's synthesis graph: frame0, frame1, t and the motion in, the
    frame at t out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frame0, frame1, t, *motion):
        return self.model.synthesis(frame0, frame1, t, *motion)


def finish(model):
    """The exported graph made compact and reproducible: every Constant node
    becomes an initializer (one per distinct value), as ONNX Runtime folds
    initializers at load but schedules each Constant as a node, and the
    exporter's doc strings are dropped so that two runs give the same
    bytes."""
    graph = model.graph
    seen = {}     # (dtype, dims, bytes) -> initializer name
    rename = {}   # a Constant's output -> the initializer that replaces it
    for init in graph.initializer:
        seen.setdefault((init.data_type, tuple(init.dims), init.raw_data), init.name)
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            t = node.attribute[0].t
            t = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t), node.output[0])
            key = (t.data_type, tuple(t.dims), t.raw_data)
            if key in seen:
                rename[node.output[0]] = seen[key]
            else:
                seen[key] = t.name
                graph.initializer.append(t)
            continue
        nodes.append(node)
    del graph.node[:]
    for node in nodes:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
        node.doc_string = ""
        graph.node.append(node)
    for out in graph.output:
        if out.name in rename:
            raise SystemExit("output %s is a constant" % out.name)
    model.doc_string = ""
    onnx.checker.check_model(model)
    return model


def write_graph(module, args, path, inputs, outputs, dynamic):
    """Exports module at args to path with the given names and dynamic
    sides; returns the file's sha256."""
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buf, opset_version=OPSET, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True)
    data = finish(onnx.load_from_string(buf.getvalue())).SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def export(name, module, description):
    """Writes name.onnx and name.json, and for a model with a motion graph
    name.motion.onnx: frames of any height and width that are multiples of
    module.multiple, batch 1."""
    h, w = 64, 96
    frames = (torch.rand(1, 3, h, w), torch.rand(1, 3, h, w))
    t = torch.tensor([0.5])
    sides = {2: "height", 3: "width"}
    dynamic = {"frame0": sides, "frame1": sides, "frame": sides}
    manifest = {
        "name": name, "kind": "interpolate", "file": name + ".onnx",
        "description": description,
        "inputs": ["frame0", "frame1", "t"], "outputs": ["frame"],
        "layout": "NCHW", "channels": "RGB", "range": [0, 1],
        "multiple": module.multiple,
    }
    if not hasattr(module, "motion_outputs"):
        manifest["sha256"] = write_graph(module, frames + (t,), os.path.join(OUT, name + ".onnx"),
                                         ["frame0", "frame1", "t"], ["frame"], dynamic)
    else:
        names = list(module.motion_outputs)
        with torch.no_grad():
            motion = module.motion(*frames)
        # The field's sides are the frame's over the model's scale.
        mdyn = {n: {2: "height/%d" % module.scale, 3: "width/%d" % module.scale}
                for n, v in zip(names, motion) if v.shape[2] > 1}
        mname = getattr(module, "motion_of", name)
        mpath = os.path.join(OUT, mname + ".motion.onnx")
        if mname == name:
            msha = write_graph(_Motion(module), frames, mpath, ["frame0", "frame1"], names, dict(dynamic, **mdyn))
        else:
            with open(mpath, "rb") as f:
                msha = hashlib.sha256(f.read()).hexdigest()
        manifest["sha256"] = write_graph(_Synthesis(module), frames + (t,) + tuple(motion),
                                         os.path.join(OUT, name + ".onnx"),
                                         ["frame0", "frame1", "t"] + names, ["frame"], dict(dynamic, **mdyn))
        manifest["motion"] = {"file": mname + ".motion.onnx", "outputs": names, "sha256": msha}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest["sha256"]


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
        sha = export(name, module, description)
        print("%s.onnx sha256 %s" % (name, sha), file=sys.stderr)
    write_reference(MODELS)
    write_detectors()
    write_frame_model()


if __name__ == "__main__":
    main()
