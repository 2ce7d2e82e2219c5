// Package pipeline runs one conversion: images are read and placed on one
// canvas, passed through the optional frame model and interpolator, and
// streamed into the encoder. The stages overlap, and only a bounded number
// of frames is in memory at any time.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/video"
)

// Pipeline converts images to videos. The zero value works with the ffmpeg
// on PATH and no models; it is safe for concurrent use.
type Pipeline struct {
	FFmpeg string         // ffmpeg program; "" means "ffmpeg" on PATH
	Models img2vid.Models // resolves model names; nil when none are available
	// Limits bound each job; zero fields mean no limit. The command and the
	// server fill them from img2vid.DefaultLimits and the user's settings.
	Limits  img2vid.Limits
	Workers int          // images decoded at once; 0 means one per CPU
	Logger  *slog.Logger // nil means slog.Default()
}

// frame is one decoded image on its way to the encoder.
type frame struct {
	img  *image.NRGBA
	data []byte              // the file itself, on the JPEG pass-through path
	dets []img2vid.Detection // what the detect model found on img, if one runs
}

// FormatFor returns the format for an output file name: its extension when
// that names a format, else MP4.
func FormatFor(output string) string {
	switch strings.ToLower(filepath.Ext(output)) {
	case ".webm":
		return img2vid.FormatWebM
	case ".gif":
		return img2vid.FormatGIF
	}
	return img2vid.FormatMP4
}

// Convert encodes the images at inputs, in the order given, into output,
// calling progress (which may be nil) as frames reach the encoder. output
// appears only when the whole video is written.
func (p *Pipeline) Convert(ctx context.Context, inputs []string, output string, opts img2vid.Options, progress func(img2vid.Progress)) (img2vid.Result, error) {
	start := time.Now()
	res, err := p.convert(ctx, start, inputs, output, opts, progress, true)
	var refused *passThroughError
	if errors.As(err, &refused) {
		// ffmpeg refused files that this package's decoder reads (and
		// checks, as libjpeg does), or one proved not plain only as it was
		// sent: decode them here instead.
		p.logger().Warn("JPEGs given to ffmpeg whole need decoding here; starting again", "reason", refused.err)
		return p.convert(ctx, start, inputs, output, opts, progress, false)
	}
	return res, err
}

// convert is Convert, passing plain JPEGs to ffmpeg whole only when
// passThroughOK is set.
func (p *Pipeline) convert(ctx context.Context, start time.Time, inputs []string, output string, opts img2vid.Options,
	progress func(img2vid.Progress), passThroughOK bool) (img2vid.Result, error) {
	log := p.logger()
	if opts.Format == "" {
		opts.Format = FormatFor(output)
	}
	if err := opts.Validate(); err != nil {
		return img2vid.Result{}, err
	}
	if len(inputs) == 0 {
		return img2vid.Result{}, img2vid.Errorf(img2vid.EINVALID, "no input images")
	}
	lim := p.Limits
	maxPixels := lim.Pixels

	// Every header first: a file that is not an image, or too large, stops
	// the job before ffmpeg starts.
	headers := make([]ingest.Header, len(inputs))
	for i, in := range inputs {
		h, err := ingest.ReadHeader(in, maxPixels)
		if err != nil {
			return img2vid.Result{}, err
		}
		headers[i] = h
	}

	var fm img2vid.FrameModel
	var interp img2vid.Interpolator
	if opts.FrameModel != "" {
		m, err := p.models().FrameModel(opts.FrameModel)
		if err != nil {
			return img2vid.Result{}, err
		}
		fm = m
	}
	if opts.Interpolate > 1 || opts.Resamples() {
		m, err := p.models().Interpolator(opts.InterpModel)
		if err != nil {
			return img2vid.Result{}, err
		}
		interp = m
	}
	det, err := p.detector(opts)
	if err != nil {
		return img2vid.Result{}, err
	}

	cv := ingest.Canvas{Width: opts.Width, Height: opts.Height, Fit: opts.Fit}
	sizedBy := "" // the file whose size the video takes, to name in a refusal
	if cv.Width == 0 {
		cv.Width, cv.Height = headers[0].Width, headers[0].Height
		if fm != nil {
			cv.Width, cv.Height = fm.OutputSize(cv.Width, cv.Height)
		}
		sizedBy = filepath.Base(inputs[0]) + ": "
	}
	if w, h := cv.Size(); w > img2vid.MaxSide || h > img2vid.MaxSide {
		return img2vid.Result{}, img2vid.Errorf(img2vid.ETOOLARGE, "%svideo size %dx%d is above the limit of %dx%d; set a smaller size",
			sizedBy, w, h, img2vid.MaxSide, img2vid.MaxSide)
	}
	fw, fh := cv.Size()
	// The frames and what a model makes of an image are bounded like the
	// images: a small request must not make huge frames.
	if img2vid.Over(int64(fw)*int64(fh), maxPixels) {
		return img2vid.Result{}, lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitPixels, "%svideo frames of %dx%d are too large (set a smaller size)", sizedBy, fw, fh)
	}
	for i, h := range headers {
		if fm == nil {
			break
		}
		if w, h := fm.OutputSize(h.Width, h.Height); img2vid.Over(int64(w)*int64(h), maxPixels) {
			return img2vid.Result{}, lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitPixels, "%s: %s would make it %dx%d",
				filepath.Base(inputs[i]), fm.Name(), w, h)
		}
	}

	spec := video.Spec{Input: video.InputRaw, Width: fw, Height: fh, FPS: opts.OutputFPS(),
		Format: opts.Format, Quality: opts.Quality, Preset: opts.Preset, Output: output}
	passThrough := passThroughOK && fm == nil && interp == nil && det == nil && canPassThrough(headers, fw, fh)
	if passThrough {
		spec.Input = video.InputJPEG
	}

	ffmpegPath := p.ffmpeg()
	var audioLen float64
	if opts.Audio != "" {
		// The pictures go to a file of their own first; the soundtrack is
		// added once their exact length is known.
		var err error
		if audioLen, err = p.ProbeAudio(ctx, opts.Audio, fmt.Sprintf("soundtrack %q", filepath.Base(opts.Audio))); err != nil {
			return img2vid.Result{}, err
		}
		silent, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.silent")
		if err != nil {
			return img2vid.Result{}, img2vid.Errorf(img2vid.EINVALID, "cannot write output %s: %w", output, err)
		}
		silent.Close()
		defer os.Remove(silent.Name())
		spec.Output = silent.Name()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &frameWriter{fps: spec.FPS}
	if det != nil {
		if out.log, err = annotate.NewLog(opts.Detections); err != nil {
			return img2vid.Result{}, err
		}
		defer out.log.Abort()
	}
	enc, err := video.Start(ctx, ffmpegPath, spec, log)
	if err != nil {
		return img2vid.Result{}, err
	}
	out.enc = enc

	res := img2vid.Result{Output: output, Format: opts.Format, Width: fw, Height: fh, Inputs: len(inputs),
		FPS: spec.FPS, FrameModel: opts.FrameModel}
	if interp != nil {
		res.InterpModel = interp.Name()
	}
	perInput := max(opts.Interpolate, 1)
	total := opts.OutputFrames(len(inputs))
	// With audio_fit=extend the last image is held until the sound ends.
	hold := func(frames int) int {
		if opts.AudioFit != img2vid.AudioExtend || audioLen == 0 {
			return 0
		}
		return max(HoldFrames(audioLen, spec.FPS, frames), 0)
	}
	total += hold(total)
	report := func(stage string) {
		if progress == nil {
			return
		}
		done := enc.Frames()
		el := time.Since(start)
		var eta time.Duration
		if done > 0 && done < total {
			eta = el * time.Duration(total-done) / time.Duration(done)
		}
		progress(img2vid.Progress{Stage: stage, Done: done, Total: total, ElapsedMS: el.Milliseconds(), ETAMS: eta.Milliseconds()})
	}
	report(img2vid.StageDecode)

	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	load := func(ctx context.Context, i int) (frame, error) {
		if passThrough {
			data, err := os.ReadFile(inputs[i])
			if err != nil {
				return frame{}, img2vid.Errorf(img2vid.EINVALID, "cannot read %s: %w", filepath.Base(inputs[i]), err)
			}
			// The header walked the file's markers; walk the very bytes
			// ffmpeg gets, decoding their Huffman data too: damage there
			// that ffmpeg would read past is refused, as Decode does, and a
			// file found not plain after all (blocks ffmpeg's transform
			// would wrap on, or a file changed since) is decoded here.
			if err := ingest.PlainJPEG(data); err != nil {
				if img2vid.ErrorCode(err) == img2vid.EINVALID {
					return frame{}, img2vid.Errorf(img2vid.EINVALID, "%s: %w", filepath.Base(inputs[i]), err)
				}
				return frame{}, &passThroughError{fmt.Errorf("%s is not a plain JPEG: %w", filepath.Base(inputs[i]), err)}
			}
			return frame{data: data}, nil
		}
		img, _, err := ingest.Decode(inputs[i], maxPixels)
		if err != nil {
			return frame{}, err
		}
		if fm != nil {
			if img, err = fm.Apply(ctx, img); err != nil {
				return frame{}, fmt.Errorf("%s on %s: %w", fm.Name(), filepath.Base(inputs[i]), err)
			}
		}
		f := frame{img: cv.Place(img)}
		if det != nil {
			if f.dets, err = detect(ctx, det, f.img, opts.DetectParams(), inputs[i]); err != nil {
				return frame{}, err
			}
		}
		return f, nil
	}

	slots, wait := ordered(ctx, len(inputs), workers, 2*workers+1, load)
	err = func() error {
		var prev frame
		havePrev := false
		kept := 0 // images used so far, duplicates dropped by dedupe left out
		for slot := range slots {
			r := <-slot
			if r.err != nil {
				return r.err
			}
			cur := r.val
			if havePrev && sameFrame(prev, cur) {
				res.Duplicates++
				if opts.Dedupe {
					total = opts.OutputFrames(len(inputs) - res.Duplicates)
					total += hold(total)
					continue
				}
			}
			kept++
			if opts.Resamples() {
				// The frames in prev's slot need the next image, so the
				// video runs one image behind the reading.
				if havePrev {
					if err := p.resample(ctx, out, interp, prev, cur, kept-1, opts, &res); err != nil {
						return err
					}
				}
			} else {
				if havePrev && interp != nil {
					if err := p.between(ctx, out, interp, prev, cur, opts, &res); err != nil {
						return err
					}
				}
				if err := out.write(cur); err != nil {
					return err
				}
			}
			report(img2vid.StageEncode)
			prev, havePrev = cur, true
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !havePrev {
			return nil
		}
		// Hold the last image for the rest of its slot, so the video lasts
		// as long as the images at their rate, whatever the interpolation.
		slot := perInput - 1
		if opts.Resamples() {
			slot = opts.OutputFrames(kept) - enc.Frames()
		}
		for range slot {
			if err := out.write(prev); err != nil {
				return err
			}
		}
		for range hold(enc.Frames()) {
			if err := out.write(prev); err != nil {
				return err
			}
			report(img2vid.StageEncode)
		}
		return nil
	}()
	if err == nil {
		err = enc.Close()
		if err == nil && audioLen > 0 {
			d := float64(enc.Frames()) / spec.FPS
			err = video.Mux(ctx, ffmpegPath, video.MuxSpec{Video: spec.Output, Audio: opts.Audio, Format: opts.Format,
				Duration: d, FadeOut: FadeOut(audioLen, d), Output: output})
			res.Audio = min(audioLen, d)
		}
		if err == nil && out.log != nil {
			err = out.log.Commit()
		}
	} else {
		enc.Abort()
	}
	// Stop the loaders still decoding or inferring ahead, and wait for
	// them: the next job must not start on top of them, and the runtime
	// must not be closed under a model run.
	stopped := ctx.Err() // a cancel from the caller, read before ours
	cancel()
	wait()
	if err != nil {
		var notPlain *passThroughError
		if passThrough && stopped == nil && !errors.As(err, &notPlain) && img2vid.ErrorCode(err) == img2vid.EINTERNAL {
			err = blameFile(inputs[:min(enc.Frames()+1, len(inputs))], maxPixels, err)
		}
		if stopped != nil {
			// Whatever broke after a cancel (ffmpeg killed, a model
			// interrupted) is a consequence; the cancel is the cause.
			return img2vid.Result{}, img2vid.Errorf(img2vid.ECANCELED, "conversion stopped: %w", stopped)
		}
		return img2vid.Result{}, err
	}
	res.Frames = enc.Frames()
	if det != nil {
		res.Detections = out.log.Summary(det.Name())
	}
	res.Duration = float64(res.Frames) / res.FPS
	if fi, err := os.Stat(output); err == nil {
		res.Bytes = fi.Size()
	}
	res.ElapsedMS = time.Since(start).Milliseconds()
	total = res.Frames
	report(img2vid.StageDone)
	log.Info("converted", "output", output, "inputs", res.Inputs, "frames", res.Frames, "size", fmt.Sprintf("%dx%d", fw, fh),
		"format", res.Format, "pass_through", passThrough, "duplicates", res.Duplicates, "scene_cuts", res.SceneCuts,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// between writes the frames between a and b: interpolated ones, or, when
// the pair is a scene cut, a hold of a (a warp across a cut only smears).
func (p *Pipeline) between(ctx context.Context, out *frameWriter, interp img2vid.Interpolator, fa, fb frame, opts img2vid.Options, res *img2vid.Result) error {
	a, b := fa.img, fb.img
	n := opts.Interpolate
	if SceneDiff(a, b) > opts.SceneCut {
		res.SceneCuts++
		for k := 1; k < n; k++ {
			if err := out.frame(a, fa.dets, false); err != nil {
				return err
			}
		}
		return nil
	}
	ts := make([]float32, n-1)
	for k := range ts {
		ts[k] = float32(k+1) / float32(n)
	}
	mids, err := interp.Interpolate(ctx, a, b, ts)
	if err != nil {
		return fmt.Errorf("%s: %w", interp.Name(), err)
	}
	for k, m := range mids {
		// The objects where they are at this frame's time; drawn after
		// interpolation, so the interpolator never sees a box.
		if err := out.frame(m, annotate.Between(fa.dets, fb.dets, float64(ts[k])), true); err != nil {
			return err
		}
	}
	return nil
}

// ProbeAudio decodes the soundtrack at path and returns its length in
// seconds, or an EINVALID error naming the file by label when it is not
// audio.
func (p *Pipeline) ProbeAudio(ctx context.Context, path, label string) (float64, error) {
	return video.ProbeAudio(ctx, p.ffmpeg(), path, label)
}

// HoldFrames is how many frames at fps must follow the first frames for the
// video to last at least seconds; 0 or less when it already does.
func HoldFrames(seconds, fps float64, frames int) int {
	// A hair of tolerance: 2.5 s at 4 fps is 10 frames, not 11 after
	// float rounding.
	return int(math.Ceil(seconds*fps-1e-6)) - frames
}

// FadeOut is the fade given to a soundtrack of audioLen seconds cut at a
// video of videoLen seconds: none when the sound ends by itself, else the
// last second, or a quarter of a shorter video.
func FadeOut(audioLen, videoLen float64) float64 {
	if audioLen <= videoLen+0.05 {
		return 0
	}
	return min(1, videoLen/4)
}

func (p *Pipeline) ffmpeg() string {
	if p.FFmpeg == "" {
		return "ffmpeg"
	}
	return p.FFmpeg
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// resample writes the output frames whose times fall in the slot of image
// i-1 (fa), up to image i (fb): frame j is at image time j*fps/fps_out
// and is made at t = that time - (i-1) between them; one at t = 0 is fa
// itself. A scene cut holds fa, as between does.
func (p *Pipeline) resample(ctx context.Context, out *frameWriter, interp img2vid.Interpolator, fa, fb frame, i int, opts img2vid.Options, res *img2vid.Result) error {
	a, b := fa.img, fb.img
	last := img2vid.ResampleTimes(i, opts.FPS, opts.FPSOut) // frames before image i's time
	var ts []float32
	for j := out.enc.Frames(); j < last; j++ {
		t := float64(j)*opts.FPS/opts.FPSOut - float64(i-1)
		if t < 1e-6 { // on fa itself, up to rounding
			if err := out.write(fa); err != nil {
				return err
			}
			continue
		}
		ts = append(ts, float32(min(t, 1)))
	}
	if len(ts) == 0 {
		return nil
	}
	if SceneDiff(a, b) > opts.SceneCut {
		res.SceneCuts++
		for range ts {
			if err := out.frame(a, fa.dets, false); err != nil {
				return err
			}
		}
		return nil
	}
	mids, err := interp.Interpolate(ctx, a, b, ts)
	if err != nil {
		return fmt.Errorf("%s: %w", interp.Name(), err)
	}
	for k, m := range mids {
		if err := out.frame(m, annotate.Between(fa.dets, fb.dets, float64(ts[k])), true); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pipeline) models() img2vid.Models {
	if p.Models == nil {
		return noModels{}
	}
	return p.Models
}

// noModels answers every name when no runtime is configured.
type noModels struct{}

func (noModels) FrameModel(name string) (img2vid.FrameModel, error) {
	return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "frame model %q: no inference runtime is configured", name)
}

func (noModels) Interpolator(name string) (img2vid.Interpolator, error) {
	return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "interpolation model %q: no inference runtime is configured", name)
}

func (noModels) Detector(name string) (img2vid.Detector, error) {
	return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "detect model %q: no inference runtime is configured", name)
}

// sameFrame reports whether two consecutive images are exact duplicates:
// identical pixels, or, on the pass-through path, identical files.
func sameFrame(a, b frame) bool {
	if a.data != nil || b.data != nil {
		return bytes.Equal(a.data, b.data)
	}
	return a.img.Rect == b.img.Rect && bytes.Equal(a.img.Pix, b.img.Pix)
}

// canPassThrough reports whether ffmpeg can decode the files itself: every
// image is a plain JPEG (one image, coded so that ffmpeg's decoder reads it
// as ours does: see ingest.PlainJPEG), upright, of exactly the frame size.
// Then no pixel of ours would change, and ffmpeg's decoder is the faster
// one.
func canPassThrough(headers []ingest.Header, w, h int) bool {
	for _, hd := range headers {
		if !hd.Plain || hd.Orientation != 1 || hd.Width != w || hd.Height != h {
			return false
		}
	}
	return true
}

// blameFile finds which of the files ffmpeg was given whole it could not
// decode, by decoding them here, so the error names the file; when every
// file decodes here, it returns ffmpegErr as a *passThroughError.
func blameFile(files []string, maxPixels int64, ffmpegErr error) error {
	for _, f := range files {
		if _, _, err := ingest.Decode(f, maxPixels); err != nil {
			return err
		}
	}
	return &passThroughError{ffmpegErr}
}

// passThroughError is ffmpeg's failure on JPEG files given to it whole,
// every one of which this package's decoder reads, or a file found unfit
// to give it whole after the job started: the job is run again decoding
// the files here.
type passThroughError struct{ err error }

func (e *passThroughError) Error() string { return e.err.Error() }
func (e *passThroughError) Unwrap() error { return e.err }

// SceneDiff is the mean absolute difference of luma between a and b, in
// [0,1], sampled on a sparse grid: a cheap measure of whether two frames
// show the same scene.
func SceneDiff(a, b *image.NRGBA) float64 {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	const step = 4
	var sum, n int64
	for y := 0; y < h; y += step {
		pa := a.Pix[y*a.Stride:]
		pb := b.Pix[y*b.Stride:]
		for x := 0; x < w; x += step {
			i := 4 * x
			la := 299*int64(pa[i]) + 587*int64(pa[i+1]) + 114*int64(pa[i+2])
			lb := 299*int64(pb[i]) + 587*int64(pb[i+1]) + 114*int64(pb[i+2])
			if la > lb {
				sum += la - lb
			} else {
				sum += lb - la
			}
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n) / (1000 * 255)
}
