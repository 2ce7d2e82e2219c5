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
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	// caption is drawn under the image on each of its frames; "" for none.
	caption string
	index   int // the input it was made from
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
// appears only when the whole video is written. It is Plan, then Run.
func (p *Pipeline) Convert(ctx context.Context, inputs []string, output string, opts img2vid.Options, progress func(img2vid.Progress)) (img2vid.Result, error) {
	if opts.Format == "" {
		opts.Format = FormatFor(output)
	}
	plan, err := p.Plan(ctx, inputs, opts)
	if err != nil {
		return img2vid.Result{}, err
	}
	if plan.Options.Audio != "" {
		defer os.Remove(plan.Options.Audio)
	}
	return p.Run(ctx, plan, inputs, output, 0, progress)
}

// Plan reads the headers of the images at inputs (no pixel is decoded)
// and the models the options name, decodes the soundtrack, and makes the
// job's plan, or names the first limit it breaks. The soundtrack
// (opts.Audio) is decoded once, into a FLAC file of the pipeline's own in
// the temporary folder: the plan's Options.Audio names that file, Run
// muxes it, and the caller removes it once done with the plan (Convert
// does). The user's file is read by ffmpeg this once.
func (p *Pipeline) Plan(ctx context.Context, inputs []string, opts img2vid.Options) (img2vid.Plan, error) {
	images, err := headers(inputs)
	if err != nil {
		return img2vid.Plan{}, err
	}
	if opts.Caption == img2vid.CaptionName {
		for i, in := range inputs {
			images[i].Caption = img2vid.NameCaption(in)
		}
	}
	job := img2vid.Job{Options: opts, Limits: p.Limits, Images: images}
	if job.Models, err = p.jobModels(opts); err != nil {
		return img2vid.Plan{}, err
	}
	// The soundtrack last, once nothing else can turn the job away first.
	if opts.Audio != "" {
		if job.Options.Audio, job.AudioSeconds, err = p.decodeSoundtrack(ctx, opts.Audio); err != nil {
			return img2vid.Plan{}, err
		}
	}
	plan, err := img2vid.MakePlan(job)
	if err != nil && job.Options.Audio != "" {
		os.Remove(job.Options.Audio) // no plan names it
	}
	return plan, err
}

// decodeSoundtrack decodes the user's soundtrack at path into a new FLAC
// file in the temporary folder, returning the file and its length. The
// file is private to the user running the command (0600).
func (p *Pipeline) decodeSoundtrack(ctx context.Context, path string) (string, float64, error) {
	f, err := os.CreateTemp("", "img2vid-soundtrack-*.flac")
	if err != nil {
		return "", 0, fmt.Errorf("creating the file the soundtrack is decoded into: %w", err)
	}
	f.Close()
	seconds, err := video.DecodeAudio(ctx, p.ffmpeg(), path, f.Name(), fmt.Sprintf("soundtrack %q", filepath.Base(path)), p.Limits.Duration)
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), seconds, nil
}

// jobModels loads the models opts names and describes them as a plan
// needs them: their kind, scale and labels, and what the catalogue says of
// them (the sha256 of their file). They are loaded, not only listed, so
// that a missing runtime or a broken model is said as such.
func (p *Pipeline) jobModels(opts img2vid.Options) ([]img2vid.ModelInfo, error) {
	var listed []img2vid.ModelInfo
	if opts.NamesModels() {
		listed = p.models().ListModels()
	}
	info := func(m img2vid.ModelInfo) img2vid.ModelInfo {
		if i := slices.IndexFunc(listed, func(l img2vid.ModelInfo) bool { return l.Name == m.Name && l.Available }); i >= 0 {
			m.SHA256 = listed[i].SHA256
		}
		return m
	}
	var out []img2vid.ModelInfo
	if opts.FrameModel != "" {
		m, err := p.models().FrameModel(opts.FrameModel)
		if err != nil {
			return nil, err
		}
		scale, _ := m.OutputSize(1, 1)
		out = append(out, info(img2vid.ModelInfo{Name: opts.FrameModel, Kind: img2vid.KindFrame, Scale: scale, Available: true}))
	}
	if opts.Interpolates() {
		if _, err := p.models().Interpolator(opts.InterpModel); err != nil {
			return nil, err
		}
		out = append(out, info(img2vid.ModelInfo{Name: opts.InterpModel, Kind: img2vid.KindInterpolate, Available: true}))
	}
	if opts.DetectModel != "" {
		d, err := p.models().Detector(opts.DetectModel)
		if err != nil {
			return nil, err
		}
		out = append(out, info(img2vid.ModelInfo{Name: opts.DetectModel, Kind: img2vid.KindDetect, Labels: d.Labels(), Available: true}))
	}
	return out, nil
}

// headers reads the header of each image at inputs, as a plan knows them.
func headers(inputs []string) ([]img2vid.Image, error) {
	images := make([]img2vid.Image, len(inputs))
	for i, in := range inputs {
		h, err := ingest.ReadHeader(in, 0) // the plan checks the pixels, naming the file
		if err != nil {
			return nil, err
		}
		images[i] = h.Image(filepath.Base(in), fileSize(in))
	}
	return images, nil
}

// fileSize is the size of the file at path, 0 when it cannot be read (the
// header was just read from it; the read-ahead only needs an estimate).
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Run encodes the images at inputs into output as plan says, calling
// progress (which may be nil) as frames reach the encoder. The plan may
// have been made elsewhere: Run first checks, with Plan.Check, that the
// files' headers and the models here are those it was made from, and
// works out nothing of it again. maxBytes, when above 0, is the most the
// video may take on disk (with a soundtrack, each of the two files written
// in turn): ffmpeg stops there and the job fails naming max_disk_mb.
// The plan's soundtrack (Options.Audio) is read as FLAC, never probed:
// it is the file Plan, or on a server ProbeAudio, decoded it into.
// output appears only when the whole video is written.
func (p *Pipeline) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64, progress func(img2vid.Progress)) (img2vid.Result, error) {
	start := time.Now()
	images, err := headers(inputs)
	if err != nil {
		return img2vid.Result{}, err
	}
	models, err := p.jobModels(plan.Options)
	if err != nil {
		return img2vid.Result{}, err
	}
	if err := plan.Check(images, models, p.Limits); err != nil {
		return img2vid.Result{}, err
	}
	res, err := p.run(ctx, start, plan, inputs, output, maxBytes, progress, plan.PassThrough)
	var refused *passThroughError
	if errors.As(err, &refused) {
		// ffmpeg refused files that this package's decoder reads (and
		// checks, as libjpeg does), or one proved not plain only as it was
		// sent: decode them here instead.
		p.logger().Warn("JPEGs given to ffmpeg whole need decoding here; starting again", "reason", refused.err)
		return p.run(ctx, start, plan, inputs, output, maxBytes, progress, false)
	}
	return res, err
}

// run is Run, passing the files to ffmpeg whole when passThrough is set.
func (p *Pipeline) run(ctx context.Context, start time.Time, plan img2vid.Plan, inputs []string, output string, maxBytes int64,
	progress func(img2vid.Progress), passThrough bool) (img2vid.Result, error) {
	log := p.logger()
	opts := plan.Options
	lim := p.Limits
	maxPixels := lim.Pixels
	var fm img2vid.FrameModel
	var interp img2vid.Interpolator
	if opts.FrameModel != "" {
		m, err := p.models().FrameModel(opts.FrameModel)
		if err != nil {
			return img2vid.Result{}, err
		}
		fm = m
	}
	if opts.Interpolates() {
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
	cv := ingest.Canvas{Width: plan.FitWidth, Height: plan.FitHeight, Fit: opts.Fit}
	fw, fh := plan.Width, plan.Height

	spec := video.Spec{Input: video.InputRaw, Width: fw, Height: fh, FPS: plan.FPS,
		Format: opts.Format, Quality: opts.Quality, Preset: opts.Preset, Output: output, MaxBytes: maxBytes}
	if passThrough {
		spec.Input = video.InputJPEG
	}

	ffmpegPath := p.ffmpeg()
	audioLen := plan.AudioSeconds
	if opts.Audio != "" {
		// The pictures go to a file of their own first; the soundtrack is
		// added once their exact length is known.
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
	total := plan.Frames
	// With audio_fit=extend the last image is held until the sound ends;
	// the plan counted those frames with every image kept, and duplicates
	// dropped since make the hold longer.
	hold := func(frames int) int {
		if opts.AudioFit != img2vid.AudioExtend || audioLen == 0 {
			return 0
		}
		return max(img2vid.HoldFrames(audioLen, spec.FPS, frames), 0)
	}
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
		progress(img2vid.Progress{Stage: stage, Done: done, Total: total, ElapsedMS: el.Milliseconds(), ETAMS: eta.Milliseconds(),
			Bytes: enc.Written()})
	}
	report(img2vid.StageDecode)

	workers, window := readAhead(plan.Memory, p.Workers)
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
			return frame{data: data, index: i}, nil
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
		f := frame{img: cv.Place(img), caption: plan.Images[i].Caption, index: i}
		if det != nil {
			if f.dets, err = detect(ctx, det, f.img, opts.DetectParams(), inputs[i]); err != nil {
				return frame{}, err
			}
		}
		return f, nil
	}

	show := &slides{out: out, opts: opts, slots: plan.Slots}
	slots, wait := ordered(ctx, len(inputs), workers, window, load)
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
			switch {
			case opts.Slideshow():
				// An image's slot ends in a transition to the next: it is
				// written once the next one is here.
				if havePrev {
					if err := show.show(prev, &cur); err != nil {
						return err
					}
				}
			case opts.Resamples():
				// The frames in prev's slot need the next image, so the
				// video runs one image behind the reading.
				if havePrev {
					if err := p.resample(ctx, out, interp, prev, cur, kept-1, opts, &res); err != nil {
						return err
					}
				}
			default:
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
		switch {
		case opts.Slideshow():
			if err := show.show(prev, nil); err != nil {
				return err
			}
			slot = 0
		case opts.Resamples():
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
				Duration: d, FadeOut: FadeOut(audioLen, d), Output: output, MaxBytes: maxBytes})
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
		if errors.Is(err, video.ErrMaxBytes) {
			err = lim.Refuse(img2vid.EBUSY, img2vid.LimitDiskMB, "the video grew past the disk space left for jobs (%d bytes) while it was written", maxBytes)
		}
		if stopped != nil {
			// Whatever broke after a cancel (ffmpeg killed, a model
			// interrupted) is a consequence; the cancel is the cause.
			return img2vid.Result{}, img2vid.Errorf(img2vid.ECANCELED, "conversion stopped: %w", stopped)
		}
		return img2vid.Result{}, err
	}
	res.Frames = enc.Encoded() // what the video holds; Close checked it against what was sent
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
// the pair is a scene cut, the job's transition (a hold of a for none).
func (p *Pipeline) between(ctx context.Context, out *frameWriter, interp img2vid.Interpolator, fa, fb frame, opts img2vid.Options, res *img2vid.Result) error {
	a, b := fa.img, fb.img
	n := opts.Interpolate
	if SceneDiff(a, b) > opts.SceneCut {
		// A warp across a cut only smears: the pair gets the transition
		// over the frames between, or a cut (a held).
		res.SceneCuts++
		show := &slides{out: out, opts: opts}
		for k := 1; k < n; k++ {
			var err error
			if opts.HasTransition() {
				err = show.between(fa, fb, float64(k)/float64(n))
			} else {
				err = out.frame(a, fa.dets, fa.caption, false)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	ts := make([]float32, n-1)
	for k := range ts {
		ts[k] = float32(k+1) / float32(n)
	}
	return p.interpolate(ctx, out, interp, fa, fb, ts)
}

// interpolate writes the frames at ts between fa and fb, each straight to
// the encoder as the model makes it (the pair's motion estimated once): a
// pair's frames are never all held at once, whatever the factor. The
// objects are drawn where they are at each frame's time, after
// interpolation, so the interpolator never sees a box.
func (p *Pipeline) interpolate(ctx context.Context, out *frameWriter, interp img2vid.Interpolator, fa, fb frame, ts []float32) error {
	var written error // an error of the encoder's, not the model's
	err := interp.Interpolate(ctx, fa.img, fb.img, ts, func(k int, m *image.NRGBA) error {
		text := fa.caption // the caption changes with the image, half way
		if ts[k] >= 0.5 {
			text = fb.caption
		}
		written = out.frame(m, annotate.Between(fa.dets, fb.dets, float64(ts[k])), text, true)
		return written
	})
	if err != nil && written == nil {
		return fmt.Errorf("%s: %w", interp.Name(), err)
	}
	return err
}

// ProbeAudio decodes the soundtrack uploaded at path, once, into a FLAC
// file of img2vid's own that takes the upload's place, and returns its
// length in seconds (video.DecodeAudio): ffmpeg reads the user's file this
// once, and the job only the decoded one. A file that is not audio is an
// EINVALID error naming it by label; one longer than Limits.Duration an
// ETOOLARGE refusal naming max_duration. It is the server's
// Config.ProbeAudio; a failure leaves the upload as it was.
func (p *Pipeline) ProbeAudio(ctx context.Context, path, label string) (float64, error) {
	return video.DecodeAudio(ctx, p.ffmpeg(), path, path, label, p.Limits.Duration)
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
			if err := out.frame(a, fa.dets, fa.caption, false); err != nil {
				return err
			}
		}
		return nil
	}
	return p.interpolate(ctx, out, interp, fa, fb, ts)
}

func (p *Pipeline) models() img2vid.Models {
	if p.Models == nil {
		return noModels{}
	}
	return p.Models
}

// noModels answers every name when no runtime is configured.
type noModels struct{}

func (noModels) ListModels() []img2vid.ModelInfo { return nil }

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

// readAhead is how many images decode at once and how many may exist
// ahead of the encoder, finished or not, so that together they stay
// within the plan's read-ahead bytes: workers in flight at PerImage each,
// the rest waiting at PerFrame. Never more workers than cores (or the
// Workers setting), never fewer than one, and one waiting frame besides.
func readAhead(m img2vid.Memory, setting int) (workers, window int) {
	cores := setting
	if cores <= 0 {
		cores = runtime.GOMAXPROCS(0)
	}
	budget := m.ReadAhead - max(m.PerFrame, 1)
	workers = int(max(1, min(int64(cores), budget/max(m.PerImage, 1))))
	waiting := (m.ReadAhead - int64(workers)*m.PerImage) / max(m.PerFrame, 1)
	window = workers + int(max(1, min(int64(workers)+1, waiting)))
	return workers, window
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
