// Package img2vid holds the domain types shared by the engine, the models,
// the server and the command line: job options, progress, results, model
// contracts and coded errors. It depends on nothing below it.
package img2vid

import (
	"math"
	"slices"
	"strconv"
	"strings"
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
)

// Ways to fit a soundtrack to the video.
const (
	AudioTrim   = "trim"   // the audio is cut (and faded out) at the video's end
	AudioExtend = "extend" // the video holds its last frame until the audio ends
)

// Bounds on option values. They keep a single job's work finite; the server
// adds its own, tighter limits on top.
const (
	MaxFPS         = 240
	MaxInterpolate = 16
	MaxSide        = 8192
	MaxQuality     = 51
)

// DefaultInterpModel is the interpolation model used when none is named.
const DefaultInterpModel = "flow"

// Options are the settings of one conversion. The zero value is not valid;
// start from DefaultOptions.
type Options struct {
	FPS    float64 // input images per second
	FPSOut float64 // output frame rate; 0 means FPS x Interpolate
	Format string  // FormatMP4, FormatWebM or FormatGIF; "" picks from the output name
	Width  int     // canvas width; 0 takes the first image's (after FrameModel)
	Height int     // canvas height; 0 takes the first image's (after FrameModel)
	Fit    string  // FitContain, FitCover or FitStretch
	// Quality is a CRF-like value: 0 is best, 51 worst; 23 is a good default.
	// It maps onto each codec's own scale.
	Quality     int
	Preset      string  // x264 speed preset
	Dedupe      bool    // drop consecutive exact duplicate images
	Interpolate int     // output frames per input pair; 1 means off
	InterpModel string  // interpolation model name
	FrameModel  string  // per-frame model name; "" means none
	SceneCut    float64 // mean luma difference in [0,1] above which a pair is not interpolated
	// Audio is the path of a soundtrack muxed into the video; "" means none.
	// It is a file, not a text option: the CLI and the server set it.
	Audio    string
	AudioFit string // AudioTrim or AudioExtend
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
	}
}

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// OutputFPS is the frame rate of the encoded video.
func (o Options) OutputFPS() float64 {
	if o.FPSOut > 0 {
		return o.FPSOut
	}
	return o.FPS * float64(max(o.Interpolate, 1))
}

// Validate reports the first option that is out of range, naming it.
func (o Options) Validate() error {
	switch {
	case !(o.FPS > 0 && o.FPS <= MaxFPS): // also rejects NaN
		return Errorf(EINVALID, "fps must be greater than 0 and at most %d, got %v", MaxFPS, o.FPS)
	case !(o.FPSOut >= 0 && o.FPSOut <= MaxFPS):
		return Errorf(EINVALID, "fps_out must be between 0 (automatic) and %d, got %v", MaxFPS, o.FPSOut)
	case o.Format != "" && o.Format != FormatMP4 && o.Format != FormatWebM && o.Format != FormatGIF:
		return Errorf(EINVALID, "format must be mp4, webm or gif, got %q", o.Format)
	case o.Width < 0 || o.Height < 0 || o.Width > MaxSide || o.Height > MaxSide:
		return Errorf(EINVALID, "size must be at most %dx%d, got %dx%d", MaxSide, MaxSide, o.Width, o.Height)
	case (o.Width == 0) != (o.Height == 0):
		return Errorf(EINVALID, "size needs both width and height, got %dx%d", o.Width, o.Height)
	case o.Fit != FitContain && o.Fit != FitCover && o.Fit != FitStretch:
		return Errorf(EINVALID, "fit must be contain, cover or stretch, got %q", o.Fit)
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
	case !(o.SceneCut >= 0 && o.SceneCut <= 1):
		return Errorf(EINVALID, "scene_cut must be between 0 and 1, got %v", o.SceneCut)
	case o.AudioFit != AudioTrim && o.AudioFit != AudioExtend:
		return Errorf(EINVALID, "audio_fit must be trim or extend, got %q", o.AudioFit)
	case o.Audio != "" && o.Format == FormatGIF:
		return Errorf(EINVALID, "a GIF cannot carry a soundtrack: choose mp4 or webm, or leave out the audio")
	}
	return nil
}

// ParseOptions reads options by their names (fps, fps_out, format, size,
// fit, quality, preset, dedupe, interpolate, interp_model, frame_model,
// scene_cut, audio_fit) through get, which returns "" for a field not given. Unset
// fields keep their defaults. The result is validated.
func ParseOptions(get func(name string) string) (Options, error) {
	o := DefaultOptions()
	var err error
	floatField := func(name string, dst *float64) {
		if s := get(name); s != "" && err == nil {
			v, perr := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				err = Errorf(EINVALID, "%s must be a number, got %q", name, s)
				return
			}
			*dst = v
		}
	}
	intField := func(name string, dst *int) {
		if s := get(name); s != "" && err == nil {
			v, perr := strconv.Atoi(strings.TrimSpace(s))
			if perr != nil {
				err = Errorf(EINVALID, "%s must be a whole number, got %q", name, s)
				return
			}
			*dst = v
		}
	}
	stringField := func(name string, dst *string) {
		if s := strings.TrimSpace(get(name)); s != "" {
			*dst = s
		}
	}
	floatField("fps", &o.FPS)
	floatField("fps_out", &o.FPSOut)
	floatField("scene_cut", &o.SceneCut)
	intField("quality", &o.Quality)
	intField("interpolate", &o.Interpolate)
	if err != nil {
		return o, err
	}
	stringField("format", &o.Format)
	stringField("fit", &o.Fit)
	stringField("preset", &o.Preset)
	stringField("interp_model", &o.InterpModel)
	stringField("frame_model", &o.FrameModel)
	stringField("audio_fit", &o.AudioFit)
	if s := strings.TrimSpace(get("size")); s != "" {
		if o.Width, o.Height, err = ParseSize(s); err != nil {
			return o, err
		}
	}
	if s := strings.TrimSpace(get("dedupe")); s != "" {
		if o.Dedupe, err = strconv.ParseBool(s); err != nil {
			return o, Errorf(EINVALID, "dedupe must be true or false, got %q", s)
		}
	}
	return o, o.Validate()
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
