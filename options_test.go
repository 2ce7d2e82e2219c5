package img2vid

import (
	"math"
	"strings"
	"testing"
)

func form(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(form("fps", "12.5", "format", "webm", "size", "1280x720", "fit", "cover", "quality", "30",
		"interpolate", "4", "interp_model", "blend", "frame_model", "sr", "dedupe", "true", "scene_cut", "0.3", "fps_out", "24",
		"detect_model", "yolox-nano", "detect_score", "0.4", "detect_iou", "0.6", "detect_classes", " person, ,dog "))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultOptions()
	want.FPS, want.Format, want.Width, want.Height, want.Fit, want.Quality = 12.5, "webm", 1280, 720, "cover", 30
	want.Interpolate, want.InterpModel, want.FrameModel, want.Dedupe, want.SceneCut, want.FPSOut = 4, "blend", "sr", true, 0.3, 24
	want.DetectModel, want.DetectScore, want.DetectIoU, want.DetectClasses = "yolox-nano", 0.4, 0.6, "person,dog"
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	if d, _ := ParseOptions(form()); d != DefaultOptions() {
		t.Errorf("empty form: %+v, want the defaults", d)
	}
	if got := want.OutputFPS(); got != 24 {
		t.Errorf("OutputFPS with fps_out = %v", got)
	}
	want.FPSOut = 0
	if got := want.OutputFPS(); got != 50 {
		t.Errorf("OutputFPS = %v, want fps x interpolate = 50", got)
	}
}

// OutputFrames counts interpolate frames per image, or, for a rate
// conversion, the frames at fps_out within the images' duration.
func TestOutputFrames(t *testing.T) {
	for _, c := range []struct {
		fps, fpsOut float64
		interpolate int
		images      int
		resamples   bool
		want        int
	}{
		{5, 0, 1, 10, false, 10},
		{5, 0, 4, 10, false, 40},
		{5, 10, 4, 10, false, 40}, // slow motion: the same frames, played slower
		{5, 5, 1, 10, false, 10},  // fps_out = fps: nothing to convert
		{24, 60, 1, 4, true, 10},  // times 0, 0.4, ..., 3.6
		{24, 60, 1, 5, true, 13},  // ceil(12.5)
		{30, 24, 1, 5, true, 4},   // exactly 4: the frame at time 5 is past the end
		{24, 60, 1, 0, true, 0},
	} {
		o := DefaultOptions()
		o.FPS, o.FPSOut, o.Interpolate = c.fps, c.fpsOut, c.interpolate
		if got := o.Resamples(); got != c.resamples {
			t.Errorf("%+v: Resamples = %v, want %v", c, got, c.resamples)
		}
		if got := o.OutputFrames(c.images); got != c.want {
			t.Errorf("%+v: OutputFrames = %d, want %d", c, got, c.want)
		}
	}
}

func TestParseOptionsRejects(t *testing.T) {
	tests := []struct {
		kv   []string
		text string
	}{
		{[]string{"fps", "0"}, "fps must be between 0.001 and 240"},
		{[]string{"fps", "-1"}, "fps must be between"},
		{[]string{"fps", "1e9"}, "fps must be between 0.001 and 240"},
		{[]string{"fps", "1e-320"}, "fps must be between 0.001 and 240"},
		{[]string{"fps_out", "1e-320"}, "fps_out must be 0 (automatic) or between"},
		{[]string{"fps", "NaN"}, "fps must be a number"},
		{[]string{"fps", "Inf"}, "fps must be a number"},
		{[]string{"fps", "five"}, "fps must be a number"},
		{[]string{"interpolate", "0"}, "interpolate must be between 1 (off) and 16"},
		{[]string{"interpolate", "1000"}, "interpolate must be between 1 (off) and 16"},
		{[]string{"interpolate", "2.5"}, "interpolate must be a whole number"},
		{[]string{"fps", "60", "interpolate", "8"}, "output frame rate"},
		{[]string{"format", "avi"}, `format must be mp4, webm or gif, got "avi"`},
		{[]string{"size", "big"}, `size must look like 1280x720, got "big"`},
		{[]string{"size", "0x10"}, "size must look like"},
		{[]string{"size", "9000x9000"}, "size must be at most 8192x8192"},
		{[]string{"fit", "zoom"}, "fit must be contain, cover, stretch or blur"},
		{[]string{"aspect", "2:1"}, "aspect must be one of 16:9, 9:16"},
		{[]string{"aspect", "9:16", "size", "1080x1920"}, "set size or aspect, not both"},
		{[]string{"aspect", "9:16", "size", "original"}, "set size or aspect, not both"},
		{[]string{"transition", "spin"}, "transition must be one of none, crossfade"},
		{[]string{"duration", "3"}, "duration must be a time such as 3s"},
		{[]string{"duration", "2s", "interpolate", "2"}, "with interpolate, set fps instead"},
		{[]string{"duration", "1s", "transition", "crossfade", "transition_duration", "1s"}, "must be shorter than each image's time on screen (1 s)"},
		{[]string{"quality", "99"}, "quality must be between 0 (best) and 51"},
		{[]string{"preset", "; rm -rf /"}, "preset must be one of"},
		{[]string{"dedupe", "maybe"}, "dedupe must be true or false"},
		{[]string{"scene_cut", "2"}, "scene_cut must be between 0 and 1"},
		{[]string{"audio_fit", "loop"}, `audio_fit must be trim, extend or spread, got "loop"`},
		{[]string{"detect_model", "d", "detect_score", "1.5"}, "detect_score must be between 0"},
		{[]string{"detect_model", "d", "detect_iou", "-0.5"}, "detect_iou must be between 0"},
		{[]string{"detect_model", "d", "detect_score", "high"}, "detect_score must be a number"},
		{[]string{"detect_score", "0.5"}, "need detect_model"},
		{[]string{"detect_classes", "dog"}, "need detect_model"},
	}
	for _, tt := range tests {
		_, err := ParseOptions(form(tt.kv...))
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%v: got %v, want an invalid-input error containing %q", tt.kv, err, tt.text)
		}
	}
}

// sizeCases are inputs to the size rule and what it makes of them (0x0 for
// a refusal).
var sizeCases = []struct {
	In   string
	W, H int
}{
	{"1280x720", 1280, 720}, {"1280 x 720", 1280, 720}, {" 640X480 ", 640, 480}, {"1920×1080", 1920, 1080},
	{"0x0", 0, 0}, {"0x10", 0, 0}, {"+5x5", 0, 0}, {"-5x5", 0, 0}, {"5x", 0, 0}, {"x5", 0, 0},
	{"12 80x720", 0, 0}, {"1280x720x3", 0, 0}, {"1280*720", 0, 0}, {"big", 0, 0}, {"1e3x1", 0, 0},
	{"99999999999x1", 0, 0},
}

func TestParseSize(t *testing.T) {
	for _, c := range sizeCases {
		w, h, err := ParseSize(c.In)
		if w != c.W || h != c.H || (err == nil) != (c.W > 0) {
			t.Errorf("ParseSize(%q) = %d, %d, %v; want %d, %d", c.In, w, h, err, c.W, c.H)
		}
	}
}

func TestAudioOptions(t *testing.T) {
	o := DefaultOptions()
	o.Audio, o.Format = "song.mp3", FormatGIF
	if err := o.Validate(); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "GIF cannot carry a soundtrack") {
		t.Errorf("audio with a GIF: %v", err)
	}
	o.Format = FormatWebM
	if err := o.Validate(); err != nil {
		t.Errorf("audio with a WebM: %v", err)
	}
	// With audio_fit spread, the images' time is the soundtrack's share:
	// only the plan knows it, so a transition is not checked against 1/fps.
	if _, err := ParseOptions(form("transition", "crossfade", "audio_fit", "spread")); err != nil {
		t.Errorf("a crossfade with audio_fit spread: %v", err)
	}
	if o, err := ParseOptions(form("audio_fit", "extend")); err != nil || o.AudioFit != AudioExtend {
		t.Errorf("audio_fit=extend: %+v, %v", o, err)
	}
}

// TestOptionTableRoundTrips: every option's value, written as a form would
// carry it, parses back to the same options, so the table's get and set
// agree for each field.
func TestOptionTableRoundTrips(t *testing.T) {
	o, err := ParseOptions(form("fps", "2.5", "fps_out", "30", "format", "gif", "size", "64x48", "fit", "stretch", "quality", "7",
		"preset", "slow", "dedupe", "true", "interpolate", "4", "interp_model", "blend", "frame_model", "sr", "scene_cut", "0.5", "audio_fit", "extend",
		"detect_model", "d", "detect_score", "0.3", "detect_iou", "0.6", "detect_classes", "fish, crab"))
	if err != nil {
		t.Fatal(err)
	}
	// aspect and size exclude each other, duration and interpolate too:
	// they are set in a second set.
	shaped, err := ParseOptions(form("aspect", "9:16", "fit", "blur", "duration", "3s", "transition", "crossfade", "transition_duration", "750ms", "caption", "name"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) string { spec, _ := OptionByName(k); return spec.Get(&shaped) }
	if back, err := ParseOptions(get); err != nil || back != shaped {
		t.Errorf("round trip of aspect and blur: %+v, %v\nwant %+v", back, err, shaped)
	}
	fields := map[string]string{}
	for _, spec := range OptionTable {
		fields[spec.Name] = spec.Get(&o)
		if fields[spec.Name] == spec.Get(&Options{}) && spec.Get(&shaped) == spec.Get(&Options{}) && spec.Type != "boolean" {
			t.Errorf("option %s reads the same from set and zero options: its get is not wired to its field", spec.Name)
		}
		if spec.Flag() != strings.ReplaceAll(spec.Name, "_", "-") {
			t.Errorf("flag of %s is %s", spec.Name, spec.Flag())
		}
	}
	back, err := ParseOptions(func(k string) string { return fields[k] })
	if err != nil || back != o {
		t.Fatalf("round trip: %+v, %v\nwant %+v", back, err, o)
	}
	if len(OptionNames()) != len(OptionTable) {
		t.Fatalf("OptionNames has %d names for %d options", len(OptionNames()), len(OptionTable))
	}
}

// FuzzParseOptions: any form either parses into options that validate, or
// is refused with an invalid-input error; it never panics.
func FuzzParseOptions(f *testing.F) {
	f.Add("5", "mp4", "1280x720", "contain", "23", "1", "flow")
	f.Add("NaN", "gif", "1x1", "cover", "-1", "1000", "")
	f.Add("1e308", "webm", "99999999999999999999x2", "stretch", "51", "16", "x")
	f.Fuzz(func(t *testing.T, fps, format, size, fit, quality, interpolate, model string) {
		o, err := ParseOptions(form("fps", fps, "format", format, "size", size, "fit", fit, "quality", quality, "interpolate", interpolate, "interp_model", model))
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error %v has code %s, want invalid", err, ErrorCode(err))
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("parsed options do not validate: %v", err)
		}
		if math.IsNaN(o.FPS) || o.OutputFPS() > MaxFPS || o.Width > MaxSide {
			t.Fatalf("out of range options accepted: %+v", o)
		}
	})
}
