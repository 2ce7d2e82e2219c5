package img2vid

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Image is what a plan knows of one input image: what its header says.
type Image struct {
	Label  string // how the image is named to the user: a file name, "file 3 (\"a.jpg\")"
	Width  int    // upright width, after EXIF orientation
	Height int    // upright height, after EXIF orientation
	// Whole is set when ffmpeg can take the file as it is: a plain JPEG,
	// upright, in colour or gray. Such files skip decoding when nothing
	// else would change their pixels.
	Whole bool
	// Bytes is the file's size; the read-ahead of whole files counts it.
	Bytes int64
	// DecodeBytes bounds what decoding the image allocates, from its header
	// (ingest.Header.DecodeBytes); 0 when unknown, when two NRGBA copies
	// are assumed.
	DecodeBytes int64
	// Caption is the text drawn under the image; "" for none.
	Caption string
	// Seconds is the image's own time on screen in a slideshow; 0 for the
	// job's (Options.ImageSeconds).
	Seconds float64
}

// useModels finds the models o names among models, records them in the
// plan, and takes the frame model's scale; an unknown model, one of
// another kind, or a detect class the model lacks is refused.
func (p *Plan) useModels(models []ModelInfo, o Options) error {
	use := func(m ModelInfo, field string) {
		p.Models = append(p.Models, ModelRef{Field: field, Name: m.Name, SHA256: m.SHA256})
	}
	if o.FrameModel != "" {
		m, err := findModel(models, "frame_model", o.FrameModel, KindFrame)
		if err != nil {
			return err
		}
		p.FrameScale = max(m.Scale, 1)
		use(m, "frame_model")
	}
	if o.Interpolates() {
		m, err := findModel(models, "interp_model", o.InterpModel, KindInterpolate)
		if err != nil {
			return err
		}
		use(m, "interp_model")
	}
	if o.DetectModel != "" {
		m, err := findModel(models, "detect_model", o.DetectModel, KindDetect)
		if err != nil {
			return err
		}
		use(m, "detect_model")
		for _, c := range ParseClasses(o.DetectClasses) {
			if !slices.Contains(m.Labels, c) {
				return Errorf(EINVALID, "detect_classes: %q is not a class of %s (it has %s)", truncate(c, 60), o.DetectModel, strings.Join(m.Labels, ", "))
			}
		}
	}
	return nil
}

// jobOptions are the job's options as its plan runs them: validated, the
// format set, and for a slideshow whose images have their own times or
// share the soundtrack's (audio_fit spread), the job's time per image.
func jobOptions(j Job) (Options, error) {
	o := j.Options
	if o.Format == "" {
		o.Format = FormatMP4
	}
	if o.AudioFit == AudioSpread && j.AudioSeconds > 0 && len(j.Images) > 0 {
		if o.Interpolate > 1 {
			return o, Errorf(EINVALID, "audio_fit spread sets each image's time in a slideshow; with interpolate, use trim or extend")
		}
		o.Seconds = j.AudioSeconds / float64(len(j.Images)) // the slideshow ends with the sound
	}
	if slices.ContainsFunc(j.Images, func(im Image) bool { return im.Seconds != 0 }) {
		if o.Interpolate > 1 {
			return o, Errorf(EINVALID, "an image's own duration is for a slideshow; with interpolate, every image takes 1/fps")
		}
		if o.Seconds == 0 {
			o.Seconds = 1 / o.FPS // a slideshow; the other images keep 1/fps
		}
	}
	return o, o.Validate()
}

// checkImage refuses an image its header, caption or own time puts over
// a limit, naming it.
func checkImage(o Options, lim Limits, im Image) error {
	if err := lim.CheckImage(im); err != nil {
		return err
	}
	if err := CheckCaption(im.Label, im.Caption); err != nil {
		return err
	}
	return checkSeconds(o, im)
}

// fitArea is the area every image is fitted into: the size set, else the
// first image's (times the frame model's scale) in the aspect set, fitted
// within the playable box unless the size is to be kept; and the first
// image's label when it decided the size, for a refusal to name.
func fitArea(o Options, first Image, scale int) (w, h int, sizedBy string) {
	if o.Width != 0 {
		return o.Width, o.Height, ""
	}
	w, h = first.Width*scale, first.Height*scale
	if o.Aspect != "" {
		w = aspectWidth(h, o.Aspect)
	}
	if !o.KeepSize {
		w, h = Playable(w, h)
	}
	return w, h, first.Label + ": "
}

// checkSeconds refuses an image's own time on screen out of the range a
// duration takes, or too short for the job's transition.
func checkSeconds(o Options, im Image) error {
	s := im.Seconds
	if s == 0 {
		s = o.ImageSeconds()
	} else if !(s >= 1/float64(MaxFPS) && s <= 1/MinFPS) {
		return Errorf(EINVALID, "the duration of %s must be between %v and %v s, got %v s", im.Label, 1/float64(MaxFPS), 1/MinFPS, s)
	}
	if o.Slideshow() && o.HasTransition() && o.TransitionSeconds >= s {
		return Errorf(EINVALID, "transition_duration %v s must be shorter than the time of %s on screen (%v s)", o.TransitionSeconds, im.Label, s)
	}
	return nil
}

// slots are the frames of each image of a slideshow at its output rate:
// each its own time or the job's, rounded where the slots meet; and
// their sum.
func slots(o Options, images []Image) ([]int, int) {
	out := make([]int, len(images))
	at, done := 0.0, 0
	for i, im := range images {
		at += cmp.Or(im.Seconds, o.ImageSeconds())
		end := int(math.Round(at * o.OutputFPS()))
		out[i], done = end-done, end
	}
	return out, done
}

// MaxCaptionRunes bounds a caption's length: more does not fit in the
// two lines a caption is drawn on.
const MaxCaptionRunes = 200

// NameCaption is the caption caption=name gives a file: its name without
// folder or extension, control characters dropped, cut to MaxCaptionRunes.
func NameCaption(file string) string {
	base := file[strings.LastIndexAny(file, `/\`)+1:]
	if dot := strings.LastIndex(base, "."); dot > 0 {
		base = base[:dot]
	}
	base = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, base)
	if r := []rune(base); len(r) > MaxCaptionRunes {
		base = string(r[:MaxCaptionRunes])
	}
	return base
}

// CheckCaption refuses a caption that is not UTF-8, holds control
// characters, or is longer than MaxCaptionRunes, naming the image by label.
func CheckCaption(label, caption string) error {
	switch {
	case !utf8.ValidString(caption):
		return Errorf(EINVALID, "the caption of %s is not UTF-8 text", label)
	case strings.ContainsFunc(caption, unicode.IsControl):
		return Errorf(EINVALID, "the caption of %s holds control characters; send plain text on one line", label)
	case utf8.RuneCountInString(caption) > MaxCaptionRunes:
		return Errorf(EINVALID, "the caption of %s has %d characters; at most %d fit", label, utf8.RuneCountInString(caption), MaxCaptionRunes)
	}
	return nil
}

// Pixels is the image's width x height.
func (im Image) Pixels() int64 { return int64(im.Width) * int64(im.Height) }

// Job is everything a plan is made from: the inputs' headers, the options,
// the limits and the models the job may name.
type Job struct {
	Images  []Image
	Options Options
	Limits  Limits
	// Models lists the models by name; only those the options name are
	// looked at. A named model missing here is unknown (EINVALID), one
	// listed but not Available cannot be used (EUNAVAILABLE, with its
	// reason).
	Models []ModelInfo
	// AudioSeconds is the soundtrack's length, 0 without one.
	AudioSeconds float64
}

// Plan is what one job will make and what it will cost, worked out from
// the headers before any pixel is decoded, and checked against every
// limit once. The pipeline runs a plan; it derives nothing again.
type Plan struct {
	Options Options // validated, with Format set
	Inputs  int     // images read
	// FitWidth and FitHeight are the area every image is fitted into;
	// Width and Height the encoded frame: the area with even sides.
	FitWidth, FitHeight int
	Width, Height       int
	// ImagePixels is the largest decoded image, ModelPixels the largest
	// frame-model output (0 without a frame model), FramePixels a frame.
	ImagePixels, ModelPixels, FramePixels int64
	// FrameScale is the frame model's output size over its input size; 0
	// without a frame model.
	FrameScale int
	// PassThrough is set when every file goes to ffmpeg whole: no model,
	// and every image a plain JPEG of exactly the frame size.
	PassThrough bool
	FPS         float64 // output frame rate
	// Slots are a slideshow's frames per image, by input: each image's
	// time at the output rate, rounded where the slots meet, so the video
	// lasts the images' times together. nil when not a slideshow.
	Slots []int
	// Frames is how many frames the encoder gets when no image is dropped
	// as a duplicate: images x interpolate, plus HoldFrames.
	Frames int
	// HoldFrames hold the last image until the soundtrack ends
	// (audio_fit=extend).
	HoldFrames   int
	Duration     float64 // seconds, Frames / FPS
	AudioSeconds float64
	// Memory is the estimated peak memory of the job, the server's process
	// and its ffmpeg together, with its read-ahead (see Memory).
	Memory Memory
	// Images are the headers the plan was made from, in order, and Models
	// the models it uses: whoever runs the plan elsewhere (a worker) checks
	// that the files and models it has are these.
	Images []Image
	Models []ModelRef
}

// ModelRef is a model a plan uses: the option that names it, its name and
// the sha256 of its file ("" when the planner was not told it).
type ModelRef struct {
	Field  string // frame_model, interp_model or detect_model
	Name   string
	SHA256 string
}

// MakePlan returns j's plan, or the first limit j breaks, naming it.
func MakePlan(j Job) (Plan, error) {
	o, err := jobOptions(j)
	if err != nil {
		return Plan{}, err
	}
	lim := j.Limits
	n := len(j.Images)
	switch {
	case n == 0:
		return Plan{}, Errorf(EINVALID, "no input images")
	case Over(n, lim.Files):
		return Plan{}, lim.Refuse(ETOOLARGE, LimitFiles, "the job has %d images", n)
	}
	for _, im := range j.Images {
		if err := checkImage(o, lim, im); err != nil {
			return Plan{}, err
		}
	}
	p := Plan{Options: o, Inputs: n, FPS: o.OutputFPS(), AudioSeconds: j.AudioSeconds, Images: slices.Clone(j.Images)}
	if err := p.useModels(j.Models, o); err != nil {
		return Plan{}, err
	}
	scale := max(p.FrameScale, 1)
	for _, im := range j.Images {
		p.ImagePixels = max(p.ImagePixels, im.Pixels())
		if p.FrameScale > 0 {
			out := int64(im.Width*scale) * int64(im.Height*scale)
			if Over(out, lim.Pixels) {
				return Plan{}, lim.Refuse(ETOOLARGE, LimitPixels, "%s: %s would make it %dx%d", im.Label, o.FrameModel, im.Width*scale, im.Height*scale)
			}
			p.ModelPixels = max(p.ModelPixels, out)
		}
	}
	var sizedBy string // the file whose size the video takes, to name in a refusal
	p.FitWidth, p.FitHeight, sizedBy = fitArea(o, j.Images[0], scale)
	p.Width, p.Height = p.FitWidth+p.FitWidth%2, p.FitHeight+p.FitHeight%2
	if p.Width > MaxSide || p.Height > MaxSide {
		return Plan{}, Errorf(ETOOLARGE, "%svideo size %dx%d is above the limit of %dx%d; set a smaller size", sizedBy, p.Width, p.Height, MaxSide, MaxSide)
	}
	p.FramePixels = int64(p.Width) * int64(p.Height)
	if Over(p.FramePixels, lim.Pixels) {
		return Plan{}, lim.Refuse(ETOOLARGE, LimitPixels, "%svideo frames of %dx%d are too large (set a smaller size)", sizedBy, p.Width, p.Height)
	}
	captioned := slices.ContainsFunc(j.Images, func(im Image) bool { return im.Caption != "" })
	p.PassThrough = !o.NamesModels() && !o.HasTransition() && !o.Moves() && !captioned // all work on pixels
	for _, im := range j.Images {
		p.PassThrough = p.PassThrough && im.Whole && im.Width == p.Width && im.Height == p.Height
	}

	// The last image is held for its whole slot, so the video lasts as
	// long as the images at their rate, whatever the interpolation.
	p.Frames = o.OutputFrames(n)
	if o.Slideshow() {
		p.Slots, p.Frames = slots(o, j.Images)
	}
	if o.AudioFit == AudioExtend && j.AudioSeconds > 0 {
		p.HoldFrames = max(HoldFrames(j.AudioSeconds, p.FPS, p.Frames), 0)
		p.Frames += p.HoldFrames
	}
	if Over(p.Frames, lim.Frames) {
		return Plan{}, lim.Refuse(ETOOLARGE, LimitFrames, "the video would have %d frames", p.Frames)
	}
	// In seconds as a float: a tiny frame rate must not overflow a Duration.
	p.Duration = float64(p.Frames) / p.FPS
	if Over(p.Duration, lim.Duration.Seconds()) {
		return Plan{}, lim.Refuse(ETOOLARGE, LimitDuration, "the video would last %.0f s", p.Duration)
	}
	if Over(j.AudioSeconds, lim.Duration.Seconds()) {
		return Plan{}, lim.Refuse(ETOOLARGE, LimitDuration, "the soundtrack lasts %.0f s", j.AudioSeconds)
	}
	p.Memory = estimateMemory(p, j.Images)
	if Over(p.Memory.Peak, lim.MemoryBytes()) {
		return Plan{}, lim.Refuse(ETOOLARGE, LimitMemoryMB, "the job would need about %d MiB at its peak (frames of %dx%d%s)",
			p.Memory.Peak>>20, p.Width, p.Height, interpolationNote(o))
	}
	return p, nil
}

// Playable returns w x h scaled down, aspect kept, to fit within the
// playable box (PlayableLong x PlayableShort, on its side for a portrait
// size), with even sides; a size within it is returned as it is.
func Playable(w, h int) (int, int) {
	long, short := PlayableLong, PlayableShort
	if h > w {
		long, short = short, long
	}
	if w <= long && h <= short {
		return w, h
	}
	s := min(float64(long)/float64(w), float64(short)/float64(h))
	even := func(v float64) int { return max(2, 2*int(math.Round(v/2))) }
	return min(even(float64(w)*s), long), min(even(float64(h)*s), short)
}

// aspectWidth is the width that makes a frame of height h the aspect
// preset's shape, rounded to even.
func aspectWidth(h int, aspect string) int {
	ws, hs, _ := strings.Cut(aspect, ":")
	aw, _ := strconv.Atoi(ws)
	ah, _ := strconv.Atoi(hs)
	return max(2, 2*int(math.Round(float64(h)*float64(aw)/float64(ah)/2)))
}

// Check reports whether the plan holds where it is about to run, when it
// was made elsewhere (a worker runs what an API replica planned): images
// are the headers of the files it has, in order, models the models it has
// and lim its own limits. Each file's header and size, and the file of
// each model whose sha256 the plan recorded, must be the planned ones (a
// difference is EUNAVAILABLE, naming the file or model). Then the plan is
// made again from those headers and the plan's options under lim: a limit
// broken here is refused as MakePlan refuses it, and a plan that is not
// what these options give (its frame size, frame count, memory) is
// refused as one this machine would not make, so that no message can run
// a job the machine would have turned away.
func (p Plan) Check(images []Image, models []ModelInfo, lim Limits) error {
	if len(images) != len(p.Images) {
		return Errorf(EUNAVAILABLE, "the job has %d images, its plan was made for %d; send it again", len(images), len(p.Images))
	}
	for i, got := range images {
		want := p.Images[i]
		if got.Width != want.Width || got.Height != want.Height || got.Whole != want.Whole || got.Bytes != want.Bytes || got.DecodeBytes != want.DecodeBytes {
			return Errorf(EUNAVAILABLE, "%s is not the file the job was planned with (planned %dx%d, %d bytes; found %dx%d, %d bytes); send it again",
				want.Label, want.Width, want.Height, want.Bytes, got.Width, got.Height, got.Bytes)
		}
	}
	for _, ref := range p.Models {
		i := slices.IndexFunc(models, func(m ModelInfo) bool { return m.Name == ref.Name })
		switch {
		case i < 0:
			return Errorf(EUNAVAILABLE, "%s %q, which the job was planned with, is not installed here", ref.Field, ref.Name)
		case !models[i].Available:
			return Errorf(EUNAVAILABLE, "%s %q cannot be used here: %s", ref.Field, ref.Name, models[i].Reason)
		case ref.SHA256 != "" && models[i].SHA256 != ref.SHA256:
			return Errorf(EUNAVAILABLE, "%s %q here is not the model the job was planned with (sha256 %s, planned %s)",
				ref.Field, ref.Name, shortSum(models[i].SHA256), shortSum(ref.SHA256))
		}
	}
	again, err := MakePlan(Job{Images: p.Images, Options: p.Options, Limits: lim, Models: models, AudioSeconds: p.AudioSeconds})
	if err != nil {
		return err
	}
	again.Models = p.Models // the sums were compared above; one the planner did not know is not
	if !reflect.DeepEqual(again, p) {
		return Errorf(EINVALID, "the job's plan is not the one its options give here (planned %s; here %s); send it again", p, again)
	}
	return nil
}

// shortSum is enough of a sha256 to tell two files apart in a message.
func shortSum(s string) string {
	if s == "" {
		return "unknown"
	}
	return s[:min(len(s), 12)]
}

// interpolationNote names what adds to a job's memory beyond its frames.
func interpolationNote(o Options) string {
	note := ""
	if o.FrameModel != "" {
		note += ", frame model " + o.FrameModel
	}
	switch {
	case o.Interpolate > 1:
		note += fmt.Sprintf(", interpolate %d with %s", o.Interpolate, o.InterpModel)
	case o.Resamples():
		note += fmt.Sprintf(", rate conversion to %v frames/s with %s", o.FPSOut, o.InterpModel)
	}
	if o.DetectModel != "" {
		note += ", detect model " + o.DetectModel
	}
	return note
}

// CheckImage refuses an image whose header breaks a limit: more pixels
// than max_pixels. It costs nothing, so a server calls it as each file's
// header arrives, before the rest of the upload is read.
func (l Limits) CheckImage(im Image) error {
	if Over(im.Pixels(), l.Pixels) {
		return l.Refuse(ETOOLARGE, LimitPixels, "%s is %dx%d", im.Label, im.Width, im.Height)
	}
	return nil
}

// NamesModels reports whether the options name any model, so that callers
// only list the models when a plan will look at them.
func (o Options) NamesModels() bool {
	return o.FrameModel != "" || o.Interpolates() || o.DetectModel != ""
}

// findModel finds the model a field names. A model is found by name alone:
// one whose manifest is broken has no kind, and is unavailable, not unknown.
func findModel(models []ModelInfo, field, name, kind string) (ModelInfo, error) {
	i := slices.IndexFunc(models, func(m ModelInfo) bool { return m.Name == name })
	switch {
	case i < 0:
		return ModelInfo{}, Errorf(EINVALID, "%s %q is not a known %s model; GET /api/models or img2vid models lists them", field, truncate(name, 60), kind)
	case !models[i].Available:
		return ModelInfo{}, Errorf(EUNAVAILABLE, "%s %q cannot be used: %s", field, name, models[i].Reason)
	case models[i].Kind != kind:
		return ModelInfo{}, Errorf(EINVALID, "%s %q is a %s model, not a %s model", field, name, models[i].Kind, kind)
	}
	return models[i], nil
}

// HoldFrames is how many frames at fps must follow the first frames for the
// video to last at least seconds; 0 or less when it already does.
func HoldFrames(seconds, fps float64, frames int) int {
	// A hair of tolerance: 2.5 s at 4 fps is 10 frames, not 11 after
	// rounding noise.
	return int(math.Ceil(seconds*fps-1e-6)) - frames
}

// String sums the plan up for logs.
func (p Plan) String() string {
	return fmt.Sprintf("%d images -> %d frames of %dx%d at %.4g fps (%.1f s), pass-through %v, peak memory about %d MiB",
		p.Inputs, p.Frames, p.Width, p.Height, p.FPS, p.Duration, p.PassThrough, p.Memory.Peak>>20)
}

// truncate shortens s to n runes for messages that quote client input.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
