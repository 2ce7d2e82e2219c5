// Package img2vid holds the domain types shared by the engine, the models,
// the server and the command line: job options, progress, results, model
// contracts and coded errors. It depends on nothing below it.
package img2vid

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Output formats.
const (
	FormatMP4  = "mp4"
	FormatWebM = "webm"
	FormatGIF  = "gif"
)

// Ways to place an image on the canvas.
const (
	FitContain = "contain" // scale to fit inside, letterbox the rest (black)
	FitCover   = "cover"   // scale to fill, crop the overflow
	FitStretch = "stretch" // scale to the canvas, ignoring aspect ratio
	// FitBlur is contain over a blurred, dimmed copy of the image that
	// fills the frame: mixed portrait and landscape photos without bars.
	FitBlur = "blur"
)

// The box a video fits in when no size is set: 4K UHD, on its side for a
// portrait first image. Larger videos are beyond what browsers and phones
// decode in hardware; a larger first image is scaled down, never a smaller
// one up.
const (
	PlayableLong  = 3840
	PlayableShort = 2160
)

// SizeOriginal is the size option that keeps the first image's size,
// however large (within MaxSide).
const SizeOriginal = "original"

// Aspects are the aspect ratio presets: landscape video, phone-screen
// portrait (Reels, Shorts, TikTok), square, portrait feed posts, and two
// photo shapes.
var Aspects = []string{"16:9", "9:16", "1:1", "4:5", "4:3", "3:2"}

// Transitions between slideshow images (the transition package draws them).
const (
	TransitionNone      = "none"       // a hard cut
	TransitionCrossfade = "crossfade"  // one image dissolves into the next
	TransitionFadeBlack = "fade-black" // the first fades to black, the next comes up from it
	TransitionWipe      = "wipe"       // the next image is uncovered from the left edge
	TransitionSlide     = "slide"      // the next image slides in from the right, pushing the first out
)

// Transitions lists the transitions, none first.
var Transitions = []string{TransitionNone, TransitionCrossfade, TransitionFadeBlack, TransitionWipe, TransitionSlide}

// CaptionName captions each image with its file's name.
const CaptionName = "name"

// Motions of a slideshow image.
const (
	MotionNone     = "none"
	MotionKenBurns = "kenburns" // a slow zoom and pan towards a focus point
)

// Where a Ken Burns move goes: the frame's centre, the subject a detect
// model finds, or a point given as x,y (fractions of the frame).
const (
	FocusCenter = "center"
	FocusDetect = "detect"
)

// Directions of a Ken Burns move, image after image.
const (
	DirectionAlternate = "alternate" // in, out, in, ...
	DirectionIn        = "in"
	DirectionOut       = "out"
)

// MaxMotionZoom bounds a Ken Burns zoom: beyond it the window is so small
// that the frame shows upscaled blur.
const MaxMotionZoom = 3

// Ways to fit a soundtrack to the video.
const (
	AudioTrim   = "trim"   // the audio is cut (and faded out) at the video's end
	AudioExtend = "extend" // the video holds its last frame until the audio ends
	AudioSpread = "spread" // each image's time is the soundtrack's length over the images: the slideshow ends with it
)

// Bounds on option values. They keep a single job's work finite; the server
// adds its own, tighter limits on top.
const (
	// MinFPS keeps a frame's duration finite and representable: below it a
	// video's length overflows what ffmpeg and time.Duration can hold.
	MinFPS         = 0.001
	MaxFPS         = 240
	MaxInterpolate = 16
	MaxSide        = 8192
	MaxQuality     = 51
)

// DefaultInterpModel is the interpolation model used when none is named.
const DefaultInterpModel = "flow2"

// Options are the settings of one conversion. The zero value is not valid;
// start from DefaultOptions.
type Options struct {
	FPS    float64 // input images per second
	FPSOut float64 // output frame rate; 0 means FPS x Interpolate
	Format string  // FormatMP4, FormatWebM or FormatGIF; "" picks from the output name
	// Width and Height are the canvas; 0x0 takes the first image's size
	// (after FrameModel), scaled down to fit the playable box unless
	// KeepSize (size=original) keeps it, or its height and Aspect's width.
	Width    int
	Height   int
	KeepSize bool
	Aspect   string // an Aspects preset ("16:9"); "" for the first image's
	Fit      string // FitContain, FitCover, FitStretch or FitBlur
	// Quality is a CRF-like value: 0 is best, 51 worst; 23 is a good default.
	// It maps onto each codec's own scale.
	Quality     int
	Preset      string  // x264 speed preset
	Dedupe      bool    // drop consecutive exact duplicate images
	Interpolate int     // output frames per input pair; 1 means off
	InterpModel string  // interpolation model name
	FrameModel  string  // per-frame model name; "" means none
	SceneCut    float64 // mean luma difference in [0,1] above which a pair is not interpolated
	// Seconds is each image's time on screen; 0 means 1/FPS. Set, it
	// makes the job a slideshow (see Slideshow).
	Seconds float64
	// Transition is how one image gives way to the next (Transitions;
	// "" or none: a cut), over TransitionSeconds at the end of each
	// image's time; with interpolate, at the scene cuts only.
	Transition        string
	TransitionSeconds float64
	// Caption, when CaptionName, captions each image with its file's name
	// (without the extension) where it has no caption of its own.
	Caption string
	// Motion moves a window over each image (MotionKenBurns) by
	// MotionZoom, towards MotionFocus, zooming as MotionDirection says.
	Motion          string
	MotionZoom      float64
	MotionFocus     string
	MotionDirection string
	// DetectModel names a detect model whose boxes are drawn on every
	// frame and reported; "" means none. DetectScore and DetectIoU (in
	// [0,1]; 0 means the model's own) and DetectClasses (comma-separated
	// class names; "" means the model's own) set its thresholds and class
	// filter for this job.
	DetectModel   string
	DetectScore   float64
	DetectIoU     float64
	DetectClasses string
	// Detections is the path the detections are written to, as JSON
	// Lines; "" means not written. A file, like Audio: the CLI and the
	// server set it.
	Detections string
	// Audio is the path of a soundtrack muxed into the video; "" means none.
	// It is a file, not a text option: the CLI and the server set it.
	Audio    string
	AudioFit string // AudioTrim, AudioExtend or AudioSpread
}

// DefaultOptions returns the options used when the user sets nothing: the
// seed's 5 fps, browser-playable MP4, letterboxed to the first image.
func DefaultOptions() Options {
	return Options{
		FPS:         5,
		Fit:         FitContain,
		Quality:     23,
		Preset:      "veryfast",
		Interpolate: 1,
		InterpModel: DefaultInterpModel,
		SceneCut:    0.12,
		AudioFit:    AudioTrim,
		Transition:  TransitionNone,
		// Half a second: long enough to read as a dissolve, short enough
		// for the seed's 5 images a second to hold each image a moment.
		TransitionSeconds: 0.5,
		Motion:            MotionNone,
		MotionZoom:        1.15,
		MotionFocus:       FocusCenter,
		MotionDirection:   DirectionAlternate,
	}
}

// Moves reports whether each image of a slideshow moves (Ken Burns).
func (o Options) Moves() bool { return o.Motion == MotionKenBurns }

// FocusPoint is MotionFocus as a point, in fractions of the frame: ok is
// false for FocusDetect, which the images' detections decide, or for a
// value that is no point.
func (o Options) FocusPoint() (x, y float64, ok bool) {
	if o.MotionFocus == "" || o.MotionFocus == FocusCenter {
		return 0.5, 0.5, true
	}
	xs, ys, found := strings.Cut(o.MotionFocus, ",")
	x, errX := strconv.ParseFloat(strings.TrimSpace(xs), 64)
	y, errY := strconv.ParseFloat(strings.TrimSpace(ys), 64)
	if !found || errX != nil || errY != nil || !(x >= 0 && x <= 1 && y >= 0 && y <= 1) {
		return 0, 0, false
	}
	return x, y, true
}

// DefaultSlideshowFPS is a slideshow's output rate when fps_out is not
// set: what every player and phone plays smoothly.
const DefaultSlideshowFPS = 30

// Slideshow reports whether the job shows each image for its time at a
// frame rate of its own (fps_out, DefaultSlideshowFPS by default), with
// transitions drawn between images: a transition or a duration is set and
// no interpolation makes the frames between the images.
func (o Options) Slideshow() bool {
	return o.Interpolate <= 1 && (o.HasTransition() || o.Seconds > 0 || o.Moves())
}

// focusOK reports whether MotionFocus names a point.
func focusOK(o Options) bool { _, _, ok := o.FocusPoint(); return ok }

// HasTransition reports whether a transition other than a cut is set.
func (o Options) HasTransition() bool { return o.Transition != "" && o.Transition != TransitionNone }

// ImageSeconds is each image's time on screen.
func (o Options) ImageSeconds() float64 {
	if o.Seconds > 0 {
		return o.Seconds
	}
	return 1 / o.FPS
}

// TransitionFrames is how many frames a transition of a slideshow takes,
// at the end of an image's slot of slot frames: none for a cut, and
// always fewer than the slot, so every image is seen whole.
func (o Options) TransitionFrames(slot int) int {
	if !o.HasTransition() {
		return 0
	}
	return min(int(math.Round(o.TransitionSeconds*o.OutputFPS())), slot-1)
}

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// Resamples reports whether the video is a rate conversion of the images:
// fps_out set without interpolate. The images then keep their own rate
// (fps) and the video samples them at fps_out, each output frame made at
// its true time between its two images, so --fps 24 --fps-out 60 makes
// frames at t = 0, 0.4, 0.8, then 0.2, 0.6 of the next pair, and so on.
// With interpolate above 1, fps_out instead only sets the playback rate of
// the interpolate frames per pair (slow or fast motion).
func (o Options) Resamples() bool {
	return o.FPSOut > 0 && o.Interpolate <= 1 && o.FPSOut != o.FPS && !o.Slideshow()
}

// Interpolates reports whether the job runs an interpolation model: to make
// frames between the images (interpolate above 1) or to convert the rate
// (Resamples). The one rule every part of the engine asks.
func (o Options) Interpolates() bool {
	return o.Interpolate > 1 || o.Resamples()
}

// OutputFrames is the number of frames of the video made from images
// images: interpolate frames per image (the last one held for its slot),
// or, when resampling, enough to cover the images' duration at fps_out.
func (o Options) OutputFrames(images int) int {
	if o.Slideshow() {
		return int(math.Round(float64(images) * o.ImageSeconds() * o.OutputFPS()))
	}
	if o.Resamples() {
		return ResampleTimes(images, o.FPS, o.FPSOut)
	}
	return images * max(o.Interpolate, 1)
}

// ResampleTimes is the number of output frames at fpsOut that cover images
// images shown at fps: those at times before the end of the last image's
// slot, images/fps.
func ResampleTimes(images int, fps, fpsOut float64) int {
	if images <= 0 {
		return 0
	}
	// Frame j is at image time j*fps/fpsOut; the tolerance keeps a frame
	// that falls exactly on the end (up to rounding) out.
	return int(math.Ceil(float64(images)*fpsOut/fps - 1e-9))
}

// OutputFPS is the frame rate of the encoded video.
func (o Options) OutputFPS() float64 {
	if o.FPSOut > 0 {
		return o.FPSOut
	}
	if o.Slideshow() {
		return DefaultSlideshowFPS
	}
	return o.FPS * float64(max(o.Interpolate, 1))
}

// Validate reports the first option that is out of range, naming it.
func (o Options) Validate() error {
	switch {
	case !(o.FPS >= MinFPS && o.FPS <= MaxFPS): // also rejects NaN
		return Errorf(EINVALID, "fps must be between %v and %d, got %v", MinFPS, MaxFPS, o.FPS)
	case !(o.FPSOut == 0 || o.FPSOut >= MinFPS && o.FPSOut <= MaxFPS):
		return Errorf(EINVALID, "fps_out must be 0 (automatic) or between %v and %d, got %v", MinFPS, MaxFPS, o.FPSOut)
	case o.Format != "" && o.Format != FormatMP4 && o.Format != FormatWebM && o.Format != FormatGIF:
		return Errorf(EINVALID, "format must be mp4, webm or gif, got %q", o.Format)
	case o.Width < 0 || o.Height < 0 || o.Width > MaxSide || o.Height > MaxSide:
		return Errorf(EINVALID, "size must be at most %dx%d, got %dx%d", MaxSide, MaxSide, o.Width, o.Height)
	case (o.Width == 0) != (o.Height == 0):
		return Errorf(EINVALID, "size needs both width and height, got %dx%d", o.Width, o.Height)
	case o.Fit != FitContain && o.Fit != FitCover && o.Fit != FitStretch && o.Fit != FitBlur:
		return Errorf(EINVALID, "fit must be contain, cover, stretch or blur, got %q", o.Fit)
	case o.Aspect != "" && !slices.Contains(Aspects, o.Aspect):
		return Errorf(EINVALID, "aspect must be one of %s, got %q", strings.Join(Aspects, ", "), o.Aspect)
	case o.Aspect != "" && (o.Width != 0 || o.KeepSize):
		return Errorf(EINVALID, "set size or aspect, not both: a size fixes the aspect already")
	case o.KeepSize && o.Width != 0:
		return Errorf(EINVALID, "size is either WxH or original, not both")
	case o.Quality < 0 || o.Quality > MaxQuality:
		return Errorf(EINVALID, "quality must be between 0 (best) and %d, got %d", MaxQuality, o.Quality)
	case !slices.Contains(x264Presets, o.Preset):
		return Errorf(EINVALID, "preset must be one of %s, got %q", strings.Join(x264Presets, ", "), o.Preset)
	case o.Interpolate < 1 || o.Interpolate > MaxInterpolate:
		return Errorf(EINVALID, "interpolate must be between 1 (off) and %d, got %d", MaxInterpolate, o.Interpolate)
	case o.OutputFPS() > MaxFPS:
		return Errorf(EINVALID, "output frame rate fps x interpolate = %v is above %d; lower fps or interpolate, or set fps_out", o.OutputFPS(), MaxFPS)
	case o.Interpolate > 1 && o.InterpModel == "":
		return Errorf(EINVALID, "interp_model must name a model when interpolate is above 1")
	case o.Resamples() && o.InterpModel == "":
		return Errorf(EINVALID, "interp_model must name a model when fps_out differs from fps without interpolate")
	case o.Transition != "" && !slices.Contains(Transitions, o.Transition):
		return Errorf(EINVALID, "transition must be one of %s, got %q", strings.Join(Transitions, ", "), o.Transition)
	case !(o.Seconds == 0 || o.Seconds >= 1/float64(MaxFPS) && o.Seconds <= 1/MinFPS):
		return Errorf(EINVALID, "duration must be between %v and %v s, got %v s", 1/float64(MaxFPS), 1/MinFPS, o.Seconds)
	case o.Seconds > 0 && o.Interpolate > 1:
		return Errorf(EINVALID, "duration is each image's time in a slideshow; with interpolate, set fps instead")
	case !(o.TransitionSeconds >= 0 && o.TransitionSeconds < o.ImageSeconds()) && o.HasTransition() && o.Slideshow() && o.AudioFit != AudioSpread:
		// (With audio_fit spread the images' time is the soundtrack's
		// share, known only to the plan, which checks it image by image.)
		return Errorf(EINVALID, "transition_duration %v s must be shorter than each image's time on screen (%v s)", o.TransitionSeconds, o.ImageSeconds())
	case o.Caption != "" && o.Caption != CaptionName:
		return Errorf(EINVALID, "caption must be name (each image's file name) or absent, got %q", o.Caption)
	case o.Motion != "" && o.Motion != MotionNone && o.Motion != MotionKenBurns:
		return Errorf(EINVALID, "motion must be none or kenburns, got %q", o.Motion)
	case o.Moves() && o.Interpolate > 1:
		return Errorf(EINVALID, "motion kenburns moves each still image of a slideshow; it does not go with interpolate")
	case o.Moves() && !(o.MotionZoom > 1 && o.MotionZoom <= MaxMotionZoom):
		return Errorf(EINVALID, "motion_zoom must be above 1 and at most %d, got %v", MaxMotionZoom, o.MotionZoom)
	case o.Moves() && o.MotionFocus == FocusDetect && o.DetectModel == "":
		return Errorf(EINVALID, "motion_focus detect needs a detect_model to find the subject")
	case o.Moves() && o.MotionFocus != FocusDetect && !focusOK(o):
		return Errorf(EINVALID, "motion_focus must be center, detect or x,y (fractions of the frame from 0 to 1, e.g. 0.3,0.6), got %q", o.MotionFocus)
	case o.MotionDirection != "" && o.MotionDirection != DirectionAlternate && o.MotionDirection != DirectionIn && o.MotionDirection != DirectionOut:
		return Errorf(EINVALID, "motion_direction must be alternate, in or out, got %q", o.MotionDirection)
	case !(o.SceneCut >= 0 && o.SceneCut <= 1):
		return Errorf(EINVALID, "scene_cut must be between 0 and 1, got %v", o.SceneCut)
	case o.AudioFit != AudioTrim && o.AudioFit != AudioExtend && o.AudioFit != AudioSpread:
		return Errorf(EINVALID, "audio_fit must be trim, extend or spread, got %q", o.AudioFit)
	case !(o.DetectScore >= 0 && o.DetectScore <= 1):
		return Errorf(EINVALID, "detect_score must be between 0 (the model's own) and 1, got %v", o.DetectScore)
	case !(o.DetectIoU >= 0 && o.DetectIoU <= 1):
		return Errorf(EINVALID, "detect_iou must be between 0 (the model's own) and 1, got %v", o.DetectIoU)
	case o.DetectModel == "" && (o.DetectScore != 0 || o.DetectIoU != 0 || o.DetectClasses != "" || o.Detections != ""):
		return Errorf(EINVALID, "detect_score, detect_iou, detect_classes and the detections file need detect_model")
	case o.Audio != "" && o.Format == FormatGIF:
		return Errorf(EINVALID, "a GIF cannot carry a soundtrack: choose mp4 or webm, or leave out the audio")
	}
	return nil
}

// OptionSpec describes one job option. The table of them, OptionTable,
// drives the API's form fields, the command's flags and the parsing of
// both, and a test checks it against the OpenAPI document.
type OptionSpec struct {
	// Name is the form field and API name; the command's flag is the same
	// with dashes (fps_out, --fps-out).
	Name string
	// Type is the value's JSON schema type: number, integer, string or
	// boolean.
	Type string
	// Enum lists the allowed values when they are a fixed set.
	Enum []string
	// Min and Max bound a number or integer, when Bounded.
	Min, Max float64
	Bounded  bool
	// Usage says what it does, for --help and the documentation.
	Usage string
	get   func(*Options) string
	set   func(*Options, string) error
}

// Flag is the command-line flag of the option, without dashes in front.
func (s OptionSpec) Flag() string { return strings.ReplaceAll(s.Name, "_", "-") }

// Get formats the option's value in o as it would be written in a form.
func (s OptionSpec) Get(o *Options) string { return s.get(o) }

// Set parses text into the option's field of o. It checks the text's form
// (a number, a size) and leaves ranges to Options.Validate.
func (s OptionSpec) Set(o *Options, text string) error { return s.set(o, strings.TrimSpace(text)) }

// OptionTable lists every job option, in the order forms and help show them.
var OptionTable = []OptionSpec{
	{Name: "fps", Type: "number", Min: MinFPS, Max: MaxFPS, Bounded: true, Usage: "images per second",
		get: func(o *Options) string { return formatFloat(o.FPS) }, set: floatOption("fps", func(o *Options) *float64 { return &o.FPS })},
	{Name: "fps_out", Type: "number", Min: 0, Max: MaxFPS, Bounded: true, Usage: "output frame rate; 0 means fps x interpolate; without interpolate, a rate conversion: each frame interpolated at its true time between its two images",
		get: func(o *Options) string { return formatFloat(o.FPSOut) }, set: floatOption("fps_out", func(o *Options) *float64 { return &o.FPSOut })},
	{Name: "duration", Type: "string", Usage: "each image's time on screen, e.g. 3s or 1.5s, instead of fps (duration = 1/fps); makes a slideshow at fps_out (default 30)",
		get: func(o *Options) string { return formatSeconds(o.Seconds) },
		set: secondsOption("duration", func(o *Options) *float64 { return &o.Seconds })},
	{Name: "transition", Type: "string", Enum: Transitions, Usage: "how each image gives way to the next: none (a cut), crossfade, fade-black, wipe or slide; with interpolate, at scene cuts",
		get: func(o *Options) string { return o.Transition }, set: func(o *Options, s string) error { o.Transition = s; return nil }},
	{Name: "transition_duration", Type: "string", Usage: "how long a transition takes, e.g. 0.5s, at the end of each image's time",
		get: func(o *Options) string { return formatSeconds(o.TransitionSeconds) },
		set: secondsOption("transition_duration", func(o *Options) *float64 { return &o.TransitionSeconds })},
	{Name: "caption", Type: "string", Enum: []string{CaptionName}, Usage: "name: each image captioned with its file's name (without the extension), where it has no caption of its own",
		get: func(o *Options) string { return o.Caption }, set: func(o *Options, s string) error { o.Caption = s; return nil }},
	{Name: "motion", Type: "string", Enum: []string{MotionNone, MotionKenBurns}, Usage: "kenburns: each image zooms and pans slowly towards motion_focus, at sub-pixel precision (a slideshow at fps_out, default 30)",
		get: func(o *Options) string { return o.Motion }, set: func(o *Options, s string) error { o.Motion = s; return nil }},
	{Name: "motion_zoom", Type: "number", Min: 1, Max: MaxMotionZoom, Bounded: true, Usage: "how far a Ken Burns move zooms: the close window is this many times smaller than the frame",
		get: func(o *Options) string { return formatFloat(o.MotionZoom) }, set: floatOption("motion_zoom", func(o *Options) *float64 { return &o.MotionZoom })},
	{Name: "motion_focus", Type: "string", Usage: "where a Ken Burns move goes: center, detect (the subject the detect model finds, kept whole in frame) or x,y (fractions of the frame, e.g. 0.3,0.6)",
		get: func(o *Options) string { return o.MotionFocus }, set: func(o *Options, s string) error { o.MotionFocus = strings.TrimSpace(s); return nil }},
	{Name: "motion_direction", Type: "string", Enum: []string{DirectionAlternate, DirectionIn, DirectionOut}, Usage: "Ken Burns zooms in, out, or alternately image after image",
		get: func(o *Options) string { return o.MotionDirection }, set: func(o *Options, s string) error { o.MotionDirection = s; return nil }},
	{Name: "format", Type: "string", Enum: []string{FormatMP4, FormatWebM, FormatGIF}, Usage: "mp4, webm or gif (default from the output's name, else mp4)",
		get: func(o *Options) string { return o.Format }, set: func(o *Options, s string) error { o.Format = s; return nil }},
	{Name: "size", Type: "string", Usage: "video size WxH, e.g. 1280x720, or original: the first image's (default the first image's, after the frame model, scaled down to fit within 3840x2160 or 2160x3840)",
		get: func(o *Options) string {
			switch {
			case o.KeepSize:
				return SizeOriginal
			case o.Width == 0:
				return ""
			}
			return strconv.Itoa(o.Width) + "x" + strconv.Itoa(o.Height)
		},
		set: func(o *Options, s string) (err error) {
			if o.KeepSize = strings.EqualFold(strings.TrimSpace(s), SizeOriginal); o.KeepSize {
				o.Width, o.Height = 0, 0
				return nil
			}
			o.Width, o.Height, err = ParseSize(s)
			return err
		}},
	{Name: "aspect", Type: "string", Enum: Aspects, Usage: "aspect ratio preset W:H, instead of size: the first image's height (within 3840x2160), the width the preset gives",
		get: func(o *Options) string { return o.Aspect }, set: func(o *Options, s string) error { o.Aspect = s; return nil }},
	{Name: "fit", Type: "string", Enum: []string{FitContain, FitCover, FitStretch, FitBlur}, Usage: "how images fill the size: contain (letterbox), cover (crop), stretch, or blur (contain, over a blurred copy filling the frame)",
		get: func(o *Options) string { return o.Fit }, set: func(o *Options, s string) error { o.Fit = s; return nil }},
	{Name: "quality", Type: "integer", Min: 0, Max: MaxQuality, Bounded: true, Usage: "CRF-like quality, 0 (best, largest) to 51 (worst)",
		get: func(o *Options) string { return strconv.Itoa(o.Quality) }, set: intOption("quality", func(o *Options) *int { return &o.Quality })},
	{Name: "preset", Type: "string", Enum: x264Presets, Usage: "x264 speed preset, ultrafast to veryslow",
		get: func(o *Options) string { return o.Preset }, set: func(o *Options, s string) error { o.Preset = s; return nil }},
	{Name: "dedupe", Type: "boolean", Usage: "drop consecutive exact duplicate images (they are reported either way)",
		get: func(o *Options) string { return strconv.FormatBool(o.Dedupe) },
		set: func(o *Options, s string) (err error) {
			if o.Dedupe, err = strconv.ParseBool(s); err != nil {
				return Errorf(EINVALID, "dedupe must be true or false, got %q", s)
			}
			return nil
		}},
	{Name: "interpolate", Type: "integer", Min: 1, Max: MaxInterpolate, Bounded: true, Usage: "N makes N-1 new frames between neighbours (1: off); the video keeps its length",
		get: func(o *Options) string { return strconv.Itoa(o.Interpolate) }, set: intOption("interpolate", func(o *Options) *int { return &o.Interpolate })},
	{Name: "interp_model", Type: "string", Usage: "interpolation model",
		get: func(o *Options) string { return o.InterpModel }, set: func(o *Options, s string) error { o.InterpModel = s; return nil }},
	{Name: "frame_model", Type: "string", Usage: "model run on every image, e.g. super-resolution (default none)",
		get: func(o *Options) string { return o.FrameModel }, set: func(o *Options, s string) error { o.FrameModel = s; return nil }},
	{Name: "scene_cut", Type: "number", Min: 0, Max: 1, Bounded: true, Usage: "mean luma difference (0-1) above which a pair is held, not interpolated",
		get: func(o *Options) string { return formatFloat(o.SceneCut) }, set: floatOption("scene_cut", func(o *Options) *float64 { return &o.SceneCut })},
	{Name: "detect_model", Type: "string", Usage: "detect model whose boxes and labels are drawn on every frame and reported (default none)",
		get: func(o *Options) string { return o.DetectModel }, set: func(o *Options, s string) error { o.DetectModel = s; return nil }},
	{Name: "detect_score", Type: "number", Min: 0, Max: 1, Bounded: true, Usage: "least score (0-1) of a detection; 0 means the model's own",
		get: func(o *Options) string { return formatFloat(o.DetectScore) }, set: floatOption("detect_score", func(o *Options) *float64 { return &o.DetectScore })},
	{Name: "detect_iou", Type: "number", Min: 0, Max: 1, Bounded: true, Usage: "overlap (0-1) above which the lower-scored of two boxes is dropped; 0 means the model's own",
		get: func(o *Options) string { return formatFloat(o.DetectIoU) }, set: floatOption("detect_iou", func(o *Options) *float64 { return &o.DetectIoU })},
	{Name: "detect_classes", Type: "string", Usage: "comma-separated classes to keep, e.g. person,dog (default the model's own)",
		get: func(o *Options) string { return o.DetectClasses },
		set: func(o *Options, s string) error { o.DetectClasses = strings.Join(ParseClasses(s), ","); return nil }},
	{Name: "audio_fit", Type: "string", Enum: []string{AudioTrim, AudioExtend, AudioSpread}, Usage: "with a soundtrack: trim (the audio ends with the video), extend (the last frame is held until the audio ends) or spread (each image's time is the soundtrack's length over the images: a slideshow that ends with it)",
		get: func(o *Options) string { return o.AudioFit }, set: func(o *Options, s string) error { o.AudioFit = s; return nil }},
}

// OptionByName returns the spec of the named option.
func OptionByName(name string) (OptionSpec, bool) {
	i := slices.IndexFunc(OptionTable, func(s OptionSpec) bool { return s.Name == name })
	if i < 0 {
		return OptionSpec{}, false
	}
	return OptionTable[i], true
}

// OptionNames lists the option names in table order.
func OptionNames() []string {
	names := make([]string, len(OptionTable))
	for i, s := range OptionTable {
		names[i] = s.Name
	}
	return names
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func floatOption(name string, field func(*Options) *float64) func(*Options, string) error {
	return func(o *Options, s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Errorf(EINVALID, "%s must be a number, got %q", name, s)
		}
		*field(o) = v
		return nil
	}
}

// secondsOption parses a time written as the project's other time flags
// are (Go's durations: 3s, 1.5s, 500ms) into seconds.
func secondsOption(name string, field func(*Options) *float64) func(*Options, string) error {
	return func(o *Options, s string) error {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return Errorf(EINVALID, "%s must be a time such as 3s or 500ms, got %q", name, s)
		}
		*field(o) = d.Seconds()
		return nil
	}
}

// formatSeconds writes seconds as secondsOption reads them; "" for 0.
func formatSeconds(s float64) string {
	if s == 0 {
		return ""
	}
	return time.Duration(math.Round(s * float64(time.Second))).String()
}

func intOption(name string, field func(*Options) *int) func(*Options, string) error {
	return func(o *Options, s string) error {
		v, err := strconv.Atoi(s)
		if err != nil {
			return Errorf(EINVALID, "%s must be a whole number, got %q", name, s)
		}
		*field(o) = v
		return nil
	}
}

// ParseOptions reads the options of OptionTable by name through get,
// which returns "" for a field not given. Unset fields keep their defaults.
// The result is validated.
func ParseOptions(get func(name string) string) (Options, error) {
	o := DefaultOptions()
	for _, spec := range OptionTable {
		if s := strings.TrimSpace(get(spec.Name)); s != "" {
			if err := spec.Set(&o, s); err != nil {
				return o, err
			}
		}
	}
	return o, o.Validate()
}

// ParseClasses splits a comma-separated list of class names, dropping
// spaces around each and empty entries.
func ParseClasses(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// DetectParams are the job's settings for its detect model.
func (o Options) DetectParams() DetectParams {
	return DetectParams{Score: o.DetectScore, IoU: o.DetectIoU, Classes: ParseClasses(o.DetectClasses)}
}

// ParseSize parses "WxH" (for example "1280x720"): two runs of digits
// joined by x, X or the multiplication sign, with spaces allowed around
// each part ("1280 x 720"). Both sides must be positive; the canvas is
// later rounded up to even sides for the encoder. The upload page applies
// the same rule (parseSize in web/app.js), so what one takes the other
// takes; TestParseSize and the browser test hold them to it.
func ParseSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(strings.ReplaceAll(strings.ToLower(s), "×", "x"), "x")
	w, h = sizeSide(ws), sizeSide(hs)
	if !ok || w <= 0 || h <= 0 {
		return 0, 0, Errorf(EINVALID, "size must look like 1280x720, got %q", s)
	}
	return w, h, nil
}

// sizeSide reads one side of a size: digits only (no sign), spaces around
// them allowed; -1 for anything else or a value too large to mean a size.
func sizeSide(s string) int {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return -1
	}
	n, _ := strconv.Atoi(s)
	return n
}
