package img2vid

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/img2vid/img2vid/models"
)

func planJob(n, w, h int, edit func(*Job)) Job {
	j := Job{Options: DefaultOptions(), Limits: DefaultLimits(), Models: []ModelInfo{
		{Name: "sr2x", Kind: KindFrame, Scale: 2, Available: true},
		{Name: "flow", Kind: KindInterpolate, Available: true},
		{Name: DefaultInterpModel, Kind: KindInterpolate, Available: true},
		{Name: "broken", Available: false, Reason: "broken.json: unexpected end of JSON input"},
		{Name: "yolo", Kind: KindDetect, Labels: []string{"fish", "diver"}, Available: true},
	}}
	for i := range n {
		j.Images = append(j.Images, Image{Label: "f" + string(rune('a'+i%26)) + ".jpg", Width: w, Height: h, Whole: true, Bytes: 1000})
	}
	if edit != nil {
		edit(&j)
	}
	return j
}

func TestMakePlan(t *testing.T) {
	p, err := MakePlan(planJob(3, 641, 480, func(j *Job) { j.Options.FrameModel = "sr2x"; j.Options.Interpolate = 4 }))
	if err != nil {
		t.Fatal(err)
	}
	if p.FitWidth != 1282 || p.FitHeight != 960 || p.Width != 1282 || p.Height != 960 || p.Frames != 12 || p.FPS != 20 ||
		p.Duration != 0.6 || p.PassThrough || p.ImagePixels != 641*480 || p.ModelPixels != 1282*960 || p.Options.Format != FormatMP4 {
		t.Errorf("plan %+v", p)
	}
	if p.Memory.Peak <= p.Memory.Encoder || p.Memory.Interpolation == 0 || p.Memory.Peak != p.Memory.ReadAhead+p.Memory.Held+p.Memory.Interpolation+p.Memory.Detection+p.Memory.Encoder+p.Memory.Base {
		t.Errorf("memory %+v", p.Memory)
	}
	p, err = MakePlan(planJob(2, 641, 481, nil))
	if err != nil || p.Width != 642 || p.Height != 482 || p.PassThrough {
		t.Errorf("odd sides: %+v, %v; want 642x482 and no pass-through (the frame differs from the files)", p, err)
	}
	if p, err = MakePlan(planJob(2, 640, 480, nil)); err != nil || !p.PassThrough || p.Memory.PerFrame != 1000 {
		t.Errorf("plain JPEGs of the frame size: %+v, %v; want pass-through", p, err)
	}
	p, err = MakePlan(planJob(1, 64, 64, func(j *Job) {
		j.Options.AudioFit, j.AudioSeconds, j.Options.FPS = AudioExtend, 2.5, 4
	}))
	if err != nil || p.Frames != 10 || p.HoldFrames != 9 {
		t.Errorf("audio extend: %+v, %v; want 10 frames, 9 of them held", p, err)
	}
}

func TestMakePlanNamesTheFirstLimitBroken(t *testing.T) {
	tests := []struct {
		name        string
		n, w, h     int
		edit        func(*Job)
		code, limit string
		says        string
	}{
		{"no images", 0, 1, 1, nil, EINVALID, "", "no input images"},
		{"bad option", 1, 8, 8, func(j *Job) { j.Options.FPS = 1e-320 }, EINVALID, "", "fps must be between"},
		{"files", 3, 8, 8, func(j *Job) { j.Limits.Files = 2 }, ETOOLARGE, LimitFiles, "the job has 3 images; the limit is max_files=2"},
		{"pixels", 1, 8000, 8000, nil, ETOOLARGE, LimitPixels, "fa.jpg is 8000x8000; the limit is max_pixels=50000000"},
		{"model output", 1, 6000, 6000, func(j *Job) { j.Options.FrameModel = "sr2x" }, ETOOLARGE, LimitPixels, "sr2x would make it 12000x12000"},
		{"frame size", 1, 8, 8, func(j *Job) { j.Options.Width, j.Options.Height = 8192, 8192 }, ETOOLARGE, LimitPixels, "video frames of 8192x8192"},
		{"unknown model", 1, 8, 8, func(j *Job) { j.Options.FrameModel = "nope" }, EINVALID, "", `frame_model "nope" is not a known frame model`},
		{"wrong kind", 1, 8, 8, func(j *Job) { j.Options.FrameModel = "flow" }, EINVALID, "", "is a interpolate model, not a frame model"},
		{"broken manifest", 1, 8, 8, func(j *Job) { j.Options.Interpolate, j.Options.InterpModel = 2, "broken" }, EUNAVAILABLE, "", "unexpected end of JSON input"},
		{"detect classes", 1, 8, 8, func(j *Job) { j.Options.DetectModel, j.Options.DetectClasses = "yolo", "fish,shark" }, EINVALID, "", `detect_classes: "shark" is not a class of yolo`},
		{"frames", 1500, 8, 8, func(j *Job) { j.Options.Interpolate, j.Options.FPS = 16, 15 }, ETOOLARGE, LimitFrames, "24000 frames"},
		{"duration", 2, 8, 8, func(j *Job) { j.Options.FPS = 0.001 }, ETOOLARGE, LimitDuration, "would last 2000 s"},
		{"audio", 2, 8, 8, func(j *Job) { j.AudioSeconds = 4000 }, ETOOLARGE, LimitDuration, "the soundtrack lasts 4000 s"},
		{"memory", 2, 4096, 4096, func(j *Job) { j.Options.Interpolate = 16; j.Limits.MemoryMB = 1024 }, ETOOLARGE, LimitMemoryMB, "interpolate 16 with " + DefaultInterpModel + "); the limit is max_memory_mb=1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MakePlan(planJob(tt.n, tt.w, tt.h, tt.edit))
			if ErrorCode(err) != tt.code || ErrorLimit(err) != tt.limit || err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got %v (%s, limit %q), want %s naming %q saying %q", err, ErrorCode(err), ErrorLimit(err), tt.code, tt.limit, tt.says)
			}
		})
	}
	// Zero turns each limit off.
	if _, err := MakePlan(planJob(3000, 8000, 8000, func(j *Job) { j.Limits = Limits{}; j.Options.FPS = 0.001 })); err != nil {
		t.Errorf("no limits: %v", err)
	}
}

// Every built-in interpolation model has its own measured memory figure,
// and the plan uses the one of the model it names: flow2, the default,
// plans more than flow; a model the table does not know gets the default.
func TestInterpolationMemoryIsPerModel(t *testing.T) {
	manifests, err := fs.Glob(models.Builtin, "*.json")
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no built-in manifests (%v)", err)
	}
	for _, name := range manifests {
		b, _ := fs.ReadFile(models.Builtin, name)
		var m struct{ Name, Kind string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := interpWorkTable[m.Name]; m.Kind == KindInterpolate && !ok {
			t.Errorf("interpolation model %s has no memory figure in interpWorkTable: measure it (see the table's comment) and add it", m.Name)
		}
	}
	peak := func(model string) int64 {
		j := planJob(2, 2048, 2048, func(j *Job) {
			j.Options.Interpolate, j.Options.InterpModel = 8, model
			j.Models = append(j.Models, ModelInfo{Name: "mine", Kind: KindInterpolate, Available: true})
		})
		p, err := MakePlan(j)
		if err != nil {
			t.Fatal(err)
		}
		return p.Memory.Interpolation
	}
	fp := int64(2048 * 2048)
	if d := peak(DefaultInterpModel) - peak("flow"); d != (interpWorkTable[DefaultInterpModel]-interpWorkTable["flow"])*fp || d <= 0 {
		t.Errorf("%s plans %d bytes more than flow, want its own figure's difference", DefaultInterpModel, d)
	}
	if d := peak("mine") - peak("flow"); d != (DefaultInterpWork-interpWorkTable["flow"])*fp {
		t.Errorf("a model without a figure plans %d bytes more than flow, want the default's difference", d)
	}
}

// A plan records the headers and models it was made from; Check compares
// those with what is where it runs, and makes the plan again under the
// limits there.
func TestPlanCheck(t *testing.T) {
	sum, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	j := planJob(2, 64, 48, func(j *Job) {
		j.Options.Interpolate = 2
		j.Models[2].SHA256 = sum // the default interpolator
	})
	p, err := MakePlan(j)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 2 || len(p.Models) != 1 || p.Models[0] != (ModelRef{Field: "interp_model", Name: DefaultInterpModel, SHA256: sum}) {
		t.Fatalf("plan records images %v and models %v", p.Images, p.Models)
	}
	here := []ModelInfo{{Name: DefaultInterpModel, Kind: KindInterpolate, Available: true, SHA256: sum}}
	if err := p.Check(j.Images, here, j.Limits); err != nil {
		t.Errorf("the same files and model: %v", err)
	}
	bigger := slices.Clone(j.Images)
	bigger[1].Bytes++
	for _, tt := range []struct {
		name   string
		images []Image
		models []ModelInfo
		want   string
	}{
		{"a file changed", bigger, here, `fb.jpg is not the file the job was planned with (planned 64x48, 1000 bytes; found 64x48, 1001 bytes)`},
		{"a file missing", j.Images[:1], here, "the job has 1 images, its plan was made for 2"},
		{"another model file", j.Images, []ModelInfo{{Name: DefaultInterpModel, Kind: KindInterpolate, Available: true, SHA256: other}}, "is not the model the job was planned with (sha256 bbbbbbbbbbbb, planned aaaaaaaaaaaa)"},
		{"no such model", j.Images, nil, "which the job was planned with, is not installed here"},
		{"model broken here", j.Images, []ModelInfo{{Name: DefaultInterpModel, Reason: "flow2.onnx: no such file"}}, "cannot be used here: flow2.onnx: no such file"},
	} {
		err := p.Check(tt.images, tt.models, j.Limits)
		if ErrorCode(err) != EUNAVAILABLE || !strings.Contains(ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want unavailable saying %q", tt.name, err, tt.want)
		}
	}
	// A model whose file the planner did not know is not compared.
	unsummed := p
	unsummed.Models = []ModelRef{{Field: "interp_model", Name: DefaultInterpModel}}
	if err := unsummed.Check(j.Images, here, j.Limits); err != nil {
		t.Errorf("a model planned without its sum: %v", err)
	}

	// A machine with tighter limits refuses the plan as it would refuse the
	// job, naming its limit.
	tight := j.Limits
	tight.Pixels = 64 * 48 / 2
	if err := p.Check(j.Images, here, tight); ErrorLimit(err) != LimitPixels {
		t.Errorf("a plan over this machine's pixel limit: %v, want it refused naming %s", err, LimitPixels)
	}
	// A plan that its options do not give (a forged message) is refused.
	for name, forge := range map[string]func(*Plan){
		"a larger frame":         func(f *Plan) { f.Width, f.Height, f.FramePixels = 4096, 4096, 4096*4096 },
		"fewer frames":           func(f *Plan) { f.Frames = 1 },
		"less memory":            func(f *Plan) { f.Memory.Peak = 1 },
		"an option out of range": func(f *Plan) { f.Options.Interpolate = MaxInterpolate + 1 },
	} {
		f := p
		forge(&f)
		if err := f.Check(j.Images, here, j.Limits); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want the plan refused as invalid", name, err)
		}
	}
}

// Without a size the video fits the playable box (4K, on its side for a
// portrait first image), aspect kept, even sides, never scaled up;
// size=original keeps the first image's; an aspect preset takes the first
// image's height and the preset's width, then fits the box.
func TestPlanSizeThatPlaysEverywhere(t *testing.T) {
	for _, tt := range []struct {
		name         string
		w, h         int
		edit         func(*Options)
		wantW, wantH int
	}{
		{"48-megapixel landscape", 8000, 6000, nil, 2880, 2160},
		{"a portrait scan", 4956, 7014, nil, 2160, 3056},
		{"square", 3000, 3000, nil, 2160, 2160},
		{"1080p stays", 1920, 1080, nil, 1920, 1080},
		{"small stays", 641, 480, nil, 642, 480},
		{"original", 4000, 3000, func(o *Options) { o.KeepSize = true }, 4000, 3000},
		{"12 megapixels", 4000, 3000, nil, 2880, 2160},
		{"a given size", 8000, 6000, func(o *Options) { o.Width, o.Height = 1280, 720 }, 1280, 720},
		{"9:16 of a landscape", 1920, 1080, func(o *Options) { o.Aspect = "9:16" }, 608, 1080},
		{"1:1", 1920, 1080, func(o *Options) { o.Aspect = "1:1" }, 1080, 1080},
		{"16:9 of a tall scan", 4956, 7014, func(o *Options) { o.Aspect = "16:9" }, 3840, 2160},
	} {
		p, err := MakePlan(planJob(2, tt.w, tt.h, func(j *Job) {
			if tt.edit != nil {
				tt.edit(&j.Options)
			}
		}))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if p.Width != tt.wantW || p.Height != tt.wantH || p.FramePixels != int64(tt.wantW*tt.wantH) {
			t.Errorf("%s (%dx%d): video %dx%d, want %dx%d", tt.name, tt.w, tt.h, p.Width, p.Height, tt.wantW, tt.wantH)
		}
	}
}

// audio_fit spread gives each image the soundtrack's length over the
// images: a slideshow at its output rate that ends with the sound, its
// transitions checked against that time.
func TestPlanSpreadsTheImagesOverTheSoundtrack(t *testing.T) {
	j := planJob(8, 64, 48, func(j *Job) { j.Options.AudioFit, j.AudioSeconds = AudioSpread, 12 })
	p, err := MakePlan(j)
	if err != nil {
		t.Fatal(err)
	}
	if p.Options.Seconds != 1.5 || p.FPS != DefaultSlideshowFPS || p.Frames != 360 || p.Duration != 12 {
		t.Errorf("plan %s, %v s each; want 8 images of 1.5 s at 30 fps, 360 frames, 12 s", p, p.Options.Seconds)
	}
	j.Options.Transition, j.Options.TransitionSeconds = TransitionCrossfade, 2
	if _, err := MakePlan(j); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "shorter than the time of fa.jpg on screen (1.5 s)") {
		t.Errorf("a 2 s transition over 1.5 s images: %v, want it refused", err)
	}
	j.Options.Transition, j.Options.Interpolate = TransitionNone, 2
	if _, err := MakePlan(j); ErrorCode(err) != EINVALID {
		t.Errorf("spread with interpolate: %v, want it refused", err)
	}
}

// Captions: a file's name makes one without its folder, extension or
// control characters; a caption too long, not UTF-8 or with control
// characters is refused naming its image; a captioned image is decoded
// (a caption is drawn on its pixels), never passed through.
func TestCaptions(t *testing.T) {
	for in, want := range map[string]string{
		"photos/IMG_2041.JPG": "IMG_2041", "/a/b/Пляж.jpeg": "Пляж", "noext": "noext", ".hidden": ".hidden",
		"bad\x07name.png": "badname", strings.Repeat("x", 300) + ".jpg": strings.Repeat("x", MaxCaptionRunes),
	} {
		if got := NameCaption(in); got != want {
			t.Errorf("NameCaption(%q) = %q, want %q", in, got, want)
		}
	}
	p, err := MakePlan(planJob(2, 64, 48, nil))
	if err != nil || !p.PassThrough {
		t.Fatalf("plain JPEGs of the frame's size pass through: %v %v", p.PassThrough, err)
	}
	p, err = MakePlan(planJob(2, 64, 48, func(j *Job) { j.Images[1].Caption = "the harbour at dawn" }))
	if err != nil || p.PassThrough || p.Images[1].Caption != "the harbour at dawn" {
		t.Errorf("a captioned image: pass-through %v, caption %q, %v", p.PassThrough, p.Images[1].Caption, err)
	}
	for caption, want := range map[string]string{
		strings.Repeat("é", MaxCaptionRunes+1): "has 201 characters; at most 200",
		"line one\nline two":                   "holds control characters",
		"\xff\xfe":                             "is not UTF-8",
	} {
		_, err := MakePlan(planJob(2, 64, 48, func(j *Job) { j.Images[0].Caption = caption }))
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "the caption of fa.jpg") || !strings.Contains(err.Error(), want) {
			t.Errorf("caption %.20q: %v, want it refused saying %q", caption, err, want)
		}
	}
}

// An image's own duration makes the job a slideshow: each image holds its
// time (its own, else 1/fps) at the output rate, the slots rounded where
// they meet; a transition must be shorter than every image's time, and
// interpolate takes none.
func TestPlanPerImageDurations(t *testing.T) {
	j := planJob(3, 64, 48, func(j *Job) { j.Images[0].Seconds, j.Images[2].Seconds = 2, 0.5 })
	p, err := MakePlan(j)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Slots, []int{60, 6, 15}) || p.Frames != 81 || p.FPS != DefaultSlideshowFPS {
		t.Errorf("slots %v, %d frames at %v fps; want 60, 6, 15 (2 s, 1/5 s, 0.5 s at 30 fps): 81", p.Slots, p.Frames, p.FPS)
	}
	j.Options.FPS, j.Images[1].Seconds = 1, 0.2 // the job's time is 1 s, one image's 0.2 s
	j.Options.Transition, j.Options.TransitionSeconds = TransitionCrossfade, 0.3
	if _, err := MakePlan(j); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "shorter than the time of fb.jpg on screen (0.2 s)") {
		t.Errorf("a 0.3 s transition with a 0.2 s image: %v, want it refused naming the image", err)
	}
	j.Options.Transition, j.Options.Interpolate = TransitionNone, 2
	if _, err := MakePlan(j); ErrorCode(err) != EINVALID {
		t.Errorf("own durations with interpolate: %v, want refused", err)
	}
	j.Options.Interpolate, j.Images[1].Seconds = 1, 5000
	if _, err := MakePlan(j); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "the duration of fb.jpg must be between") {
		t.Errorf("a 5000 s image: %v, want refused", err)
	}
}
