package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/video"
)

// stringList is a flag that can be given many times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("convert", "convert [flags] INPUT... OUTPUT\n\n"+
		"INPUT is a folder of images (read in natural order: frame_2 before frame_10) or\n"+
		"image files; OUTPUT is the video file. Relative paths resolve against INPUT_DIR\n"+
		"and OUTPUT_DIR when those are set (the container sets /input and /output).", stderr)
	b := &binder{fs: fs}
	b.str(&c.InputDir, "input-dir", "INPUT_DIR", "", "folder that relative INPUT paths start from")
	b.str(&c.OutputDir, "output-dir", "OUTPUT_DIR", "", "folder that a relative OUTPUT path starts from")
	c.runtimeFlags(b)
	o := img2vid.DefaultOptions()
	for _, spec := range img2vid.OptionTable {
		fs.Var(optionFlag{spec, &o}, spec.Flag(), spec.Usage)
	}
	lim := img2vid.DefaultLimits()
	limitFlags(b, &lim, false)
	var include, exclude stringList
	var asJSON, keepOrder, overwrite bool
	fs.Var(&include, "include", "only images whose name matches this glob (repeatable), e.g. 'frame_*.jpg'")
	fs.Var(&exclude, "exclude", "skip images whose name matches this glob (repeatable)")
	fs.BoolVar(&keepOrder, "keep-order", false, "keep INPUT files in the order given instead of natural order")
	fs.StringVar(&o.Detections, "detections", "", "write the detect model's boxes to this file as JSON Lines (one per box: frame, time_s, class, score, box)")
	fs.StringVar(&o.Audio, "audio", "", "soundtrack file (mp3, m4a, aac, wav, ogg, flac...) muxed into MP4 (AAC) or WebM (Opus)")
	fs.BoolVar(&asJSON, "json", false, "print progress and the result as JSON lines on stdout")
	fs.BoolVar(&overwrite, "overwrite", false, "replace OUTPUT even when it is not a video img2vid wrote")
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return errUsage
	}
	if o.Detections != "" {
		o.Detections = resolve(c.OutputDir, o.Detections)
	}
	if o.Audio != "" {
		o.Audio = resolve(c.InputDir, o.Audio)
		if _, err := os.Stat(o.Audio); err != nil {
			return img2vid.Errorf(img2vid.ENOTFOUND, "audio file %s: %w", o.Audio, err)
		}
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := lim.Validate(); err != nil {
		return err
	}
	log, err := c.logger()
	if err != nil {
		return err
	}

	output := resolve(c.OutputDir, fs.Arg(fs.NArg()-1))
	inputs, err := collectInputs(c.InputDir, fs.Args()[:fs.NArg()-1], include, exclude, keepOrder)
	if err != nil {
		return err
	}
	if err := checkOutput(output, inputs, overwrite); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return img2vid.Errorf(img2vid.EINVALID, "cannot create the output folder: %w", err)
	}

	models := newLazyModels(&c, log)
	defer models.Close()
	p := &pipeline.Pipeline{FFmpeg: c.FFmpeg, Models: models, Limits: lim, Logger: log}
	var show func(img2vid.Progress)
	enc := json.NewEncoder(stdout)
	switch {
	case asJSON:
		show = func(pr img2vid.Progress) {
			enc.Encode(struct {
				Event string `json:"event"`
				img2vid.Progress
			}{"progress", pr})
		}
	default:
		show = newProgressBar(stderr).update
	}
	jobCtx, cancel := context.WithCancel(ctx)
	if lim.JobTimeout > 0 {
		jobCtx, cancel = context.WithTimeout(ctx, lim.JobTimeout)
	}
	defer cancel()
	if o.Format == "" {
		o.Format = pipeline.FormatFor(output)
	}
	// The plan checks every limit from the headers alone, before a pixel
	// is decoded or ffmpeg starts.
	plan, err := p.Plan(jobCtx, inputs, o)
	if err != nil {
		return err
	}
	if plan.Options.Audio != "" {
		defer os.Remove(plan.Options.Audio) // the soundtrack decoded for this run
	}
	log.Debug("plan", "plan", plan.String())
	res, err := p.Run(jobCtx, plan, inputs, output, 0, show)
	if err != nil && ctx.Err() == nil && errors.Is(jobCtx.Err(), context.DeadlineExceeded) {
		return lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitJobTimeout, "the conversion ran past its time limit")
	}
	if err != nil {
		return err
	}
	if asJSON {
		return enc.Encode(struct {
			Event  string `json:"event"`
			Output string `json:"output"`
			img2vid.Result
		}{"done", output, res})
	}
	fmt.Fprintf(stdout, "%s: %d frames, %dx%d, %.4g fps, %.2f s, %s", output, res.Frames, res.Width, res.Height, res.FPS, res.Duration, res.Format)
	if res.Duplicates > 0 {
		verb := "kept"
		if o.Dedupe {
			verb = "dropped"
		}
		fmt.Fprintf(stdout, "; %d duplicate images %s", res.Duplicates, verb)
	}
	if o.Interpolates() {
		fmt.Fprintf(stdout, "; %s interpolation, %d scene cuts held", res.InterpModel, res.SceneCuts)
	}
	if res.Audio > 0 {
		fmt.Fprintf(stdout, "; %.2f s of sound", res.Audio)
	}
	if d := res.Detections; d != nil {
		fmt.Fprintf(stdout, "; %s: %d detections", d.Model, d.Total)
		for _, c := range d.Classes {
			fmt.Fprintf(stdout, ", %s on %d frames (at most %d at once)", c.Class, c.Frames, c.Most)
		}
		if o.Detections != "" {
			fmt.Fprintf(stdout, ", written to %s", o.Detections)
		}
	}
	fmt.Fprintln(stdout)
	return nil
}

// optionFlag binds one option of img2vid.OptionTable to a flag, so the
// command takes exactly the options the API does, by the same names.
type optionFlag struct {
	spec img2vid.OptionSpec
	o    *img2vid.Options
}

func (f optionFlag) String() string {
	if f.o == nil { // the flag package's zero value, for its help text
		return ""
	}
	return f.spec.Get(f.o)
}

func (f optionFlag) Set(s string) error { return f.spec.Set(f.o, s) }

// IsBoolFlag lets a boolean option be given alone (--dedupe).
func (f optionFlag) IsBoolFlag() bool { return f.spec.Type == "boolean" }

// checkOutput refuses an OUTPUT that would destroy something of the
// user's: an image (the video's name left off the command line makes the
// last image the output), one of the inputs, or an existing file that is
// not a video img2vid wrote, unless overwrite is set.
func checkOutput(output string, inputs []string, overwrite bool) error {
	const how = "name the video file last, after the images, e.g. img2vid convert IMG_*.jpg video.mp4"
	st, statErr := os.Stat(output)
	for _, in := range inputs {
		if filepath.Clean(in) == filepath.Clean(output) {
			return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s is also an input: %s", output, how)
		}
		if statErr == nil {
			if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
				return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s is also an input: %s", output, how)
			}
		}
	}
	ext := strings.ToLower(filepath.Ext(output))
	if ingest.IsImageName(output) && ext != ".gif" {
		return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s is an image's name, not a video's: is the video file missing? %s (.mp4, .webm or .gif)", output, how)
	}
	switch {
	case os.IsNotExist(statErr):
		return nil
	case statErr != nil:
		return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s: %w", output, statErr)
	case st.IsDir():
		return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s is a folder: name the video file to write, e.g. %s", output, filepath.Join(output, "video.mp4"))
	case overwrite:
		return nil
	}
	ours, err := video.Marked(output)
	if err != nil {
		return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s exists and cannot be read: %w", output, err)
	}
	if !ours {
		return img2vid.Errorf(img2vid.EINVALID, "OUTPUT %s exists and is not a video img2vid wrote: name a new file, or pass --overwrite to replace it", output)
	}
	return nil
}

// resolve joins a relative path onto dir (when dir is set), as the seed
// app's INPUT_DIR and OUTPUT_DIR do.
func resolve(dir, path string) string {
	if dir == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// collectInputs turns INPUT arguments into the ordered image list: a
// folder's images, filtered by the globs, or the files named.
func collectInputs(inputDir string, args []string, include, exclude []string, keepOrder bool) ([]string, error) {
	if len(args) == 1 {
		dir := resolve(inputDir, args[0])
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return ingest.List(dir, include, exclude)
		}
	}
	files := make([]string, 0, len(args))
	for _, a := range args {
		p := resolve(inputDir, a)
		st, err := os.Stat(p)
		switch {
		case os.IsNotExist(err):
			return nil, img2vid.Errorf(img2vid.ENOTFOUND, "input %s does not exist", p)
		case err != nil:
			return nil, img2vid.Errorf(img2vid.EINVALID, "input %s: %w", p, err)
		case st.IsDir():
			return nil, img2vid.Errorf(img2vid.EINVALID, "input %s is a folder: give one folder, or image files", p)
		}
		files = append(files, p)
	}
	if !keepOrder {
		sort.SliceStable(files, func(i, j int) bool {
			return ingest.NaturalLess(filepath.Base(files[i]), filepath.Base(files[j]))
		})
	}
	return files, nil
}
