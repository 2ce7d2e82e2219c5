package inference

import (
	"cmp"
	"context"
	"fmt"
	"image"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// Bounds on the boxes of one frame. A model with a low threshold can
// offer thousands of candidates; suppression is quadratic in them, and
// no one reads hundreds of boxes on a frame.
const (
	maxCandidates = 3000 // best-scored candidates that go into suppression
	maxDetections = 300  // boxes kept per frame
)

// detector runs a detect model on whole frames: each frame letterboxed
// into the model's input, the output decoded by the manifest's decoder,
// overlapping boxes suppressed, and the rest mapped back to the frame.
type detector struct {
	spec  *spec
	sess  *session
	codec *codec
	// queue gathers the frames of concurrent Detect calls into batches
	// when the model's batch dimension is free; stop ends the batcher.
	queue    chan *detectJob
	stop     chan struct{}
	stopOnce sync.Once
	inputs   sync.Pool // *[]float32 of one input item
	outputs  sync.Pool // *[]float32 of one output item, when its size is fixed
}

var _ img2vid.Detector = (*detector)(nil)

// detectJob is one frame's input waiting for a batch run.
type detectJob struct {
	in   []float32
	out  []float32      // where a run of this item alone writes; nil: anywhere
	done chan detectOut // buffered: the batcher never waits on a caller
}

type detectOut struct {
	out []float32 // this item's output values
	err error
}

func newDetector(s *spec, se *session) loadedModel {
	d := &detector{spec: s, sess: se, codec: newCodec(s.Manifest), stop: make(chan struct{})}
	if s.batched {
		d.queue = make(chan *detectJob)
		go d.batcher()
	}
	return d
}

func (d *detector) kind() string { return img2vid.KindDetect }

func (d *detector) close() error {
	d.stopOnce.Do(func() { close(d.stop) })
	return d.sess.close()
}

// Name is the model's registry name.
func (d *detector) Name() string { return d.spec.Name }

// Labels are the class names, by class index.
func (d *detector) Labels() []string { return slices.Clone(d.spec.Labels) }

// item is the number of values of one input item.
func (d *detector) item() int { return 3 * d.spec.tileW * d.spec.tileH }

// params resolves a job's parameters against the manifest's defaults:
// the score and IoU thresholds and, when classes are filtered, the set of
// class indices kept (nil keeps all).
func (d *detector) params(p img2vid.DetectParams) (score, iou float32, keep []bool, err error) {
	score, iou = float32(*d.spec.ScoreThreshold), float32(*d.spec.IoUThreshold)
	if p.Score != 0 {
		score = float32(p.Score)
	}
	if p.IoU != 0 {
		iou = float32(p.IoU)
	}
	if !(score >= 0 && score <= 1) || !(iou >= 0 && iou <= 1) {
		return 0, 0, nil, img2vid.Errorf(img2vid.EINVALID, "model %s: thresholds must be from 0 to 1, got score %v, iou %v", d.spec.Name, p.Score, p.IoU)
	}
	classes := p.Classes
	if len(classes) == 0 {
		classes = d.spec.Classes
	}
	if len(classes) == 0 {
		return score, iou, nil, nil
	}
	keep = make([]bool, len(d.spec.Labels))
	for _, c := range classes {
		i := slices.Index(d.spec.Labels, c)
		if i < 0 {
			return 0, 0, nil, img2vid.Errorf(img2vid.EINVALID, "model %s has no class %q (it has %s)", d.spec.Name, c, strings.Join(d.spec.Labels, ", "))
		}
		keep[i] = true
	}
	return score, iou, keep, nil
}

// Detect finds the objects in frame.
func (d *detector) Detect(ctx context.Context, frame *image.NRGBA, p img2vid.DetectParams) ([]img2vid.Detection, error) {
	w, h := frame.Rect.Dx(), frame.Rect.Dy()
	if w == 0 || h == 0 {
		return nil, img2vid.Errorf(img2vid.EINVALID, "model %s: the frame is empty (%dx%d)", d.spec.Name, w, h)
	}
	score, iou, keep, err := d.params(p)
	if err != nil {
		return nil, err
	}
	buf, _ := d.inputs.Get().(*[]float32)
	if buf == nil {
		b := make([]float32, d.item())
		buf = &b
	}
	defer d.inputs.Put(buf)
	in := *buf
	var out []float32
	if n := d.outputItem(); n > 0 {
		ob, _ := d.outputs.Get().(*[]float32)
		if ob == nil {
			b := make([]float32, n)
			ob = &b
		}
		defer d.outputs.Put(ob)
		out = *ob
	}
	lb := d.letterbox(in, frame)
	out, err = d.infer(ctx, in, out)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EINTERNAL, "model %s on a %dx%d frame: %w", d.spec.Name, w, h, err)
	}
	cands := decode(d.spec.Decoder, out, d.spec.classes, d.spec.tileW, d.spec.tileH, score, keep)
	cands = suppress(cands, iou, d.spec.NMS == NMSAgnostic)
	return lb.toFrame(cands, d.spec.Labels, w, h), nil
}

// outputItem is the number of values of one output item, 0 when the
// model's output rows are free.
func (d *detector) outputItem() int {
	return d.spec.rows * (d.spec.lead() + d.spec.classes)
}

// infer runs the model on one input item and returns its output, written
// into out when out is not nil and the item runs alone: alone when the
// batch is fixed, else through the batcher.
func (d *detector) infer(ctx context.Context, in, out []float32) ([]float32, error) {
	if d.queue == nil {
		outs, err := d.run(in, 1, out)
		if err != nil {
			return nil, err
		}
		return outs[0], nil
	}
	job := &detectJob{in: in, out: out, done: make(chan detectOut, 1)}
	select {
	case d.queue <- job:
	case <-d.stop:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The run is under way and reads in: wait for it whatever ctx says,
	// or the buffer could go back to the pool while the model reads it.
	r := <-job.done
	return r.out, r.err
}

// batcher runs the frames waiting in the queue: each run takes the first
// waiting frame and whichever others are already waiting, up to maxBatch,
// so batches form when workers outpace the model and never add a wait.
func (d *detector) batcher() {
	var batch []float32
	for {
		var jobs []*detectJob
		select {
		case j := <-d.queue:
			jobs = append(jobs, j)
		case <-d.stop:
			return
		}
	more:
		for len(jobs) < maxBatch {
			select {
			case j := <-d.queue:
				jobs = append(jobs, j)
			default:
				break more
			}
		}
		in, out := jobs[0].in, jobs[0].out
		if len(jobs) > 1 {
			out = nil
			batch = batch[:0]
			for _, j := range jobs {
				batch = append(batch, j.in...)
			}
			in = batch
		}
		outs, err := d.run(in, len(jobs), out)
		for k, j := range jobs {
			r := detectOut{err: err}
			if err == nil {
				r.out = outs[k]
			}
			j.done <- r
		}
	}
}

// run runs the model on n input items held in in and returns each item's
// output: in out when its size is right, else in fresh Go memory.
func (d *detector) run(in []float32, n int, out []float32) ([][]float32, error) {
	x, err := ort.NewTensor(d.shape(n), in)
	if err != nil {
		return nil, fmt.Errorf("creating the input tensor: %w", err)
	}
	defer x.Destroy()
	var shape ort.Shape
	if rows := d.spec.rows; rows > 0 {
		// The output's shape is known: ONNX Runtime writes straight into
		// Go memory, with no allocation of its own and no copy.
		vals := int64(d.spec.lead() + d.spec.classes)
		shape = ort.NewShape(int64(n), int64(rows), vals)
		if d.spec.Decoder == DecoderYOLOv8 {
			shape = ort.NewShape(int64(n), vals, int64(rows))
		}
		if int64(len(out)) != shape.FlattenedSize() {
			out = make([]float32, shape.FlattenedSize())
		}
		err = d.sess.run([]ort.Value{x}, shape, out)
	} else {
		out, shape, err = d.sess.runAlloc([]ort.Value{x})
	}
	if err != nil {
		return nil, err
	}
	if len(shape) != 3 || shape[0] != int64(n) || len(out)%n != 0 {
		return nil, fmt.Errorf("the model returned shape %v for a batch of %d", shape, n)
	}
	vals := shape[2]
	if d.spec.Decoder == DecoderYOLOv8 {
		vals = shape[1]
	}
	if want := int64(d.spec.lead() + d.spec.classes); vals != want {
		return nil, fmt.Errorf("the model returned shape %v, not %d values per box", shape, want)
	}
	per := len(out) / n
	outs := make([][]float32, n)
	for k := range outs {
		outs[k] = out[k*per : (k+1)*per : (k+1)*per]
	}
	return outs, nil
}

func (d *detector) shape(n int) ort.Shape {
	if d.spec.Layout == LayoutNHWC {
		return ort.NewShape(int64(n), int64(d.spec.tileH), int64(d.spec.tileW), 3)
	}
	return ort.NewShape(int64(n), 3, int64(d.spec.tileH), int64(d.spec.tileW))
}

// letterboxed says where a frame went in the model's input: scaled by
// ratio, its top-left corner at (padX, padY).
type letterboxed struct {
	ratio      float64
	padX, padY int
}

// letterbox writes frame into dst, one input item: scaled to fit with
// its aspect ratio kept (bilinear, sampled at pixel centres as OpenCV's
// INTER_LINEAR does, each value rounded to 8 bits as OpenCV's 8-bit
// resize gives it), placed by the manifest's letterbox, the rest filled
// with the pad value.
func (d *detector) letterbox(dst []float32, frame *image.NRGBA) letterboxed {
	s := d.spec
	fw, fh := frame.Rect.Dx(), frame.Rect.Dy()
	r := min(float64(s.tileW)/float64(fw), float64(s.tileH)/float64(fh))
	// Truncated, as int(w * r) in the models' Python preprocessing.
	nw, nh := max(int(float64(fw)*r), 1), max(int(float64(fh)*r), 1)
	lb := letterboxed{ratio: r}
	if s.Letterbox == LetterboxCenter {
		lb.padX, lb.padY = (s.tileW-nw)/2, (s.tileH-nh)/2
	}
	c := d.codec
	lb.fill(dst, c, c.lut[*s.Pad], s.tileW, s.tileH, nw, nh)
	// Source taps of each output column, as OpenCV computes them, with
	// its 11-bit fixed-point weights: the whole resize runs in integers.
	type tap struct {
		x0, x1 int // byte offsets in a row
		f      int // weight of x1, of 2048
	}
	taps := make([]tap, nw)
	sx := float64(fw) / float64(nw)
	for x := range taps {
		p := max((float64(x)+0.5)*sx-0.5, 0)
		x0 := int(p)
		f := p - float64(x0)
		if x0 >= fw-1 {
			x0, f = fw-1, 0
		}
		taps[x] = tap{4 * x0, 4 * min(x0+1, fw-1), int(math.Round(f * 2048))}
	}
	cs, ys, xs := c.strides(s.tileW, s.tileH)
	cr, cg := c.channel(0), c.channel(1)
	sy := float64(fh) / float64(nh)
	var px [3]float32
	for y := range nh {
		p := max((float64(y)+0.5)*sy-0.5, 0)
		y0 := int(p)
		fy := int(math.Round((p - float64(y0)) * 2048))
		if y0 >= fh-1 {
			y0, fy = fh-1, 0
		}
		r0 := frame.Pix[frame.PixOffset(frame.Rect.Min.X, frame.Rect.Min.Y+y0):][:4*fw]
		r1 := frame.Pix[frame.PixOffset(frame.Rect.Min.X, frame.Rect.Min.Y+min(y0+1, fh-1)):][:4*fw]
		base := (lb.padY+y)*ys + lb.padX*xs
		var pr, pg, pb, row []float32
		if c.nhwc {
			row = dst[base : base+3*nw]
		} else {
			pr = dst[cr*cs+base : cr*cs+base+nw]
			pg = dst[cg*cs+base : cg*cs+base+nw]
			pb = dst[(2-cr)*cs+base : (2-cr)*cs+base+nw]
		}
		for x, t := range taps {
			a0, a1 := r0[t.x0:t.x0+3:t.x0+3], r0[t.x1:t.x1+3:t.x1+3]
			b0, b1 := r1[t.x0:t.x0+3:t.x0+3], r1[t.x1:t.x1+3:t.x1+3]
			for k := range 3 {
				top := int(a0[k])*(2048-t.f) + int(a1[k])*t.f
				bot := int(b0[k])*(2048-t.f) + int(b1[k])*t.f
				// Rounded to 8 bits, as an 8-bit resize gives it.
				px[k] = c.lut[uint8((top*(2048-fy)+bot*fy+1<<21)>>22)]
			}
			if c.nhwc {
				q := row[3*x : 3*x+3 : 3*x+3]
				q[cr], q[cg], q[2-cr] = px[0], px[1], px[2]
			} else {
				pr[x], pg[x], pb[x] = px[0], px[1], px[2]
			}
		}
	}
	return lb
}

// fill sets the input around the nw x nh frame to the pad value: the
// rows above and below it and the columns beside it, in every channel.
func (lb letterboxed) fill(dst []float32, c *codec, pad float32, w, h, nw, nh int) {
	set := func(v []float32) {
		for i := range v {
			v[i] = pad
		}
	}
	if c.nhwc {
		set(dst[:3*lb.padY*w])
		set(dst[3*(lb.padY+nh)*w:])
		for y := lb.padY; y < lb.padY+nh; y++ {
			set(dst[3*y*w : 3*(y*w+lb.padX)])
			set(dst[3*(y*w+lb.padX+nw) : 3*(y+1)*w])
		}
		return
	}
	for k := range 3 {
		plane := dst[k*w*h : (k+1)*w*h]
		set(plane[:lb.padY*w])
		set(plane[(lb.padY+nh)*w:])
		for y := lb.padY; y < lb.padY+nh; y++ {
			set(plane[y*w : y*w+lb.padX])
			set(plane[y*w+lb.padX+nw : (y+1)*w])
		}
	}
}

// candidate is one box from the model's output, in input pixels.
type candidate struct {
	box   [4]float32 // x1, y1, x2, y2
	score float32
	class int
}

// decode reads the boxes of one output item whose score reaches minScore
// and whose class keep allows (nil: all). A row with a NaN or infinite
// value is dropped: a broken model gives no boxes, not a crash or a box
// over the whole frame. Objectness and class scores are probabilities, as
// the exports give them (sigmoid inside the graph): a row whose objectness
// is below minScore cannot reach it, and its classes are not read.
func decode(decoder string, out []float32, classes, inW, inH int, minScore float32, keep []bool) []candidate {
	var cands []candidate
	add := func(cx, cy, w, h, score float32, class int) {
		if !(score >= minScore) || class < 0 || (keep != nil && !keep[class]) {
			return // also drops a NaN score
		}
		box := [4]float32{cx - w/2, cy - h/2, cx + w/2, cy + h/2}
		if !finite(box[0]) || !finite(box[1]) || !finite(box[2]) || !finite(box[3]) || !finite(score) {
			return
		}
		cands = append(cands, candidate{box: box, score: min(score, 1), class: class})
	}
	if decoder == DecoderYOLOv8 {
		// [4+C, rows]: each value is a plane over the rows. The best class
		// of every row is found plane by plane, reading memory in order.
		rows := len(out) / (4 + classes)
		best := make([]float32, rows)
		class := make([]int32, rows)
		for r := range best {
			best[r], class[r] = float32(math.Inf(-1)), -1
		}
		for c := range classes {
			for r, v := range out[(4+c)*rows : (5+c)*rows] {
				if v > best[r] {
					best[r], class[r] = v, int32(c)
				}
			}
		}
		for r := range rows {
			add(out[r], out[rows+r], out[2*rows+r], out[3*rows+r], best[r], int(class[r]))
		}
		return cands
	}
	vals := 5 + classes
	rows := len(out) / vals
	// scan reads row r; for YOLOX, the row of cell (gx, gy) of the grid
	// of stride s.
	scan := func(r int, s, gx, gy float32) {
		row := out[r*vals : (r+1)*vals : (r+1)*vals]
		obj := row[4]
		if !(obj >= minScore) {
			return
		}
		best, class := float32(math.Inf(-1)), -1
		for c, v := range row[5:] {
			if v > best {
				best, class = v, c
			}
		}
		cx, cy, w, h := row[0], row[1], row[2], row[3]
		if decoder == DecoderYOLOX {
			cx, cy = (cx+gx)*s, (cy+gy)*s
			w, h = float32(math.Exp(float64(w)))*s, float32(math.Exp(float64(h)))*s
		}
		add(cx, cy, w, h, obj*best, class)
	}
	if decoder != DecoderYOLOX {
		for r := range rows {
			scan(r, 0, 0, 0)
		}
		return cands
	}
	// YOLOX: the grids of strides 8, 16 and 32 in turn, each row-major.
	r := 0
	for _, stride := range yoloxStrides {
		gw, gh := inW/stride, inH/stride
		for gy := range gh {
			for gx := range gw {
				if r >= rows {
					return cands // more rows than the grids have: not ours to guess
				}
				scan(r, float32(stride), float32(gx), float32(gy))
				r++
			}
		}
	}
	return cands
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// suppress is greedy non-maximum suppression: best score first, a box is
// kept unless it overlaps a kept one of its class (any class when
// agnostic) by more than iou. The result is best first, at most
// maxDetections boxes.
func suppress(cands []candidate, iou float32, agnostic bool) []candidate {
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(b.score, a.score) })
	if len(cands) > maxCandidates {
		cands = cands[:maxCandidates]
	}
	var kept []candidate
	for _, c := range cands {
		ok := true
		for _, k := range kept {
			if (agnostic || k.class == c.class) && overlap(k.box, c.box) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
			if len(kept) == maxDetections {
				break
			}
		}
	}
	return kept
}

// overlap is the intersection over union of two boxes; 0 when either is
// empty.
func overlap(a, b [4]float32) float32 {
	iw := min(a[2], b[2]) - max(a[0], b[0])
	ih := min(a[3], b[3]) - max(a[1], b[1])
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// toFrame maps boxes from the model's input back to the w x h frame,
// clipped to it; a box left with no area (it lay outside the frame) is
// dropped.
func (lb letterboxed) toFrame(cands []candidate, labels []string, w, h int) []img2vid.Detection {
	dets := make([]img2vid.Detection, 0, len(cands))
	for _, c := range cands {
		var b [4]float64
		for i, v := range c.box {
			pad, limit := lb.padX, w
			if i%2 == 1 {
				pad, limit = lb.padY, h
			}
			b[i] = min(max((float64(v)-float64(pad))/lb.ratio, 0), float64(limit))
		}
		if b[2]-b[0] < 0.5 || b[3]-b[1] < 0.5 {
			continue
		}
		dets = append(dets, img2vid.Detection{Class: labels[c.class], ClassID: c.class, Score: float64(c.score), Box: b})
	}
	return dets
}
