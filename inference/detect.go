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
}

var _ img2vid.Detector = (*detector)(nil)

// detectJob is one frame's input waiting for a batch run.
type detectJob struct {
	in   []float32
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
	lb := d.letterbox(in, frame)
	out, err := d.infer(ctx, in)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EINTERNAL, "model %s on a %dx%d frame: %w", d.spec.Name, w, h, err)
	}
	cands := decode(d.spec.Decoder, out, d.spec.classes, d.spec.tileW, d.spec.tileH, score, keep)
	cands = suppress(cands, iou, d.spec.NMS == NMSAgnostic)
	return lb.toFrame(cands, d.spec.Labels, w, h), nil
}

// infer runs the model on one input item and returns its output: alone
// when the batch is fixed, else through the batcher.
func (d *detector) infer(ctx context.Context, in []float32) ([]float32, error) {
	if d.queue == nil {
		outs, err := d.run(in, 1)
		if err != nil {
			return nil, err
		}
		return outs[0], nil
	}
	job := &detectJob{in: in, done: make(chan detectOut, 1)}
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
		in := jobs[0].in
		if len(jobs) > 1 {
			batch = batch[:0]
			for _, j := range jobs {
				batch = append(batch, j.in...)
			}
			in = batch
		}
		outs, err := d.run(in, len(jobs))
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
// output, copied out of ONNX Runtime's memory.
func (d *detector) run(in []float32, n int) ([][]float32, error) {
	x, err := ort.NewTensor(d.shape(n), in)
	if err != nil {
		return nil, fmt.Errorf("creating the input tensor: %w", err)
	}
	defer x.Destroy()
	out, shape, err := d.sess.runAlloc([]ort.Value{x})
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
	lead := int64(5)
	if d.spec.Decoder == DecoderYOLOv8 {
		lead = 4
	}
	if vals != lead+int64(d.spec.classes) {
		return nil, fmt.Errorf("the model returned shape %v, not %d values per box", shape, lead+int64(d.spec.classes))
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
	pad := c.lut[*s.Pad]
	for i := range dst {
		dst[i] = pad
	}
	cs, ys, xs := c.strides(s.tileW, s.tileH)
	ch := [3]int{c.channel(0) * cs, c.channel(1) * cs, c.channel(2) * cs}
	// Source taps of each output column, as OpenCV computes them.
	type tap struct {
		x0, x1 int // byte offsets in a row
		f      float32
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
		taps[x] = tap{4 * x0, 4 * min(x0+1, fw-1), float32(f)}
	}
	sy := float64(fh) / float64(nh)
	for y := range nh {
		p := max((float64(y)+0.5)*sy-0.5, 0)
		y0 := int(p)
		fy := float32(p - float64(y0))
		if y0 >= fh-1 {
			y0, fy = fh-1, 0
		}
		r0 := frame.Pix[frame.PixOffset(frame.Rect.Min.X, frame.Rect.Min.Y+y0):][:4*fw]
		r1 := frame.Pix[frame.PixOffset(frame.Rect.Min.X, frame.Rect.Min.Y+min(y0+1, fh-1)):][:4*fw]
		base := (lb.padY+y)*ys + lb.padX*xs
		for x, t := range taps {
			o := base + x*xs
			for k := range 3 {
				top := float32(r0[t.x0+k]) + t.f*(float32(r0[t.x1+k])-float32(r0[t.x0+k]))
				bot := float32(r1[t.x0+k]) + t.f*(float32(r1[t.x1+k])-float32(r1[t.x0+k]))
				dst[o+ch[k]] = c.lut[uint8(top+fy*(bot-top)+0.5)]
			}
		}
	}
	return lb
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
// over the whole frame.
func decode(decoder string, out []float32, classes, inW, inH int, minScore float32, keep []bool) []candidate {
	lead := 5
	if decoder == DecoderYOLOv8 {
		lead = 4
	}
	vals := lead + classes
	rows := len(out) / vals
	// at returns value v of row r in either layout.
	at := func(r, v int) float32 { return out[r*vals+v] }
	if decoder == DecoderYOLOv8 {
		at = func(r, v int) float32 { return out[v*rows+r] }
	}
	var cands []candidate
	// A YOLOX row's stride and grid cell.
	stride, gx, gy, level, levelEnd := 0, 0, 0, -1, 0
	for r := range rows {
		if decoder == DecoderYOLOX {
			for r >= levelEnd && level+1 < len(yoloxStrides) {
				level++
				stride = yoloxStrides[level]
				levelEnd += (inW / stride) * (inH / stride)
			}
			if r >= levelEnd {
				break // more rows than the grids have: not ours to guess
			}
			cell := r - (levelEnd - (inW/stride)*(inH/stride))
			gx, gy = cell%(inW/stride), cell/(inW/stride)
		}
		best, class := float32(-1), -1
		for c := range classes {
			if v := at(r, lead+c); v > best {
				best, class = v, c
			}
		}
		score := best
		if lead == 5 {
			score *= at(r, 4)
		}
		if !(score >= minScore) || class < 0 || (keep != nil && !keep[class]) {
			continue // also drops a NaN score
		}
		cx, cy, w, h := at(r, 0), at(r, 1), at(r, 2), at(r, 3)
		if decoder == DecoderYOLOX {
			s := float32(stride)
			cx, cy = (cx+float32(gx))*s, (cy+float32(gy))*s
			w, h = float32(math.Exp(float64(w)))*s, float32(math.Exp(float64(h)))*s
		}
		box := [4]float32{cx - w/2, cy - h/2, cx + w/2, cy + h/2}
		if !finite(box[0]) || !finite(box[1]) || !finite(box[2]) || !finite(box[3]) || !finite(score) {
			continue
		}
		cands = append(cands, candidate{box: box, score: min(score, 1), class: class})
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
