package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/img2vid/img2vid"
)

// coldMethod makes a video of the frames into out, in a process of its own.
type coldMethod struct {
	name string
	cmd  func(out string) *exec.Cmd
}

// coldRun is one process's run from start to finished video.
type coldRun struct {
	wall, cpu time.Duration
}

// cold times what a user of `docker run ... convert` waits for: each
// model's whole `img2vid convert --interpolate 2` of the clip, from process
// start to finished file, against ffmpeg making the same video (every
// other frame made by minterpolate, encoded as img2vid encodes) from the
// same files, rounds times each, interleaved. The frames are written once,
// at width pixels wide, as PNG, so that both read the same input.
func cold(data string, width int, img2vidBin, ffmpeg, modelsDir string, models []string, rounds int) error {
	frames, err := loadClip(data, width)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "interp-cold-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in")
	if err := writeFrames(in, frames); err != nil {
		return err
	}
	def := img2vid.DefaultOptions()
	size := frames[0].Rect.Size()
	var methods []coldMethod
	for _, m := range models {
		methods = append(methods, coldMethod{m, func(out string) *exec.Cmd {
			args := []string{"convert", "--interpolate", "2", "--interp-model", m, "--log-level", "error"}
			if modelsDir != "" {
				args = append(args, "--models-dir", modelsDir)
			}
			return exec.Command(img2vidBin, append(args, in, out)...)
		}})
	}
	methods = append(methods, coldMethod{"minterpolate mci", func(out string) *exec.Cmd {
		return exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-framerate", fmt.Sprint(def.FPS),
			"-i", filepath.Join(in, "f_%03d.png"), "-vf", "format=yuv444p,minterpolate=fps="+fmt.Sprint(2*def.FPS)+":mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1",
			"-c:v", "libx264", "-preset", def.Preset, "-crf", fmt.Sprint(def.Quality), "-pix_fmt", "yuv420p", out)
	}})
	runs := make([][]coldRun, len(methods))
	order := make([]int, len(methods))
	for i := range order {
		order[i] = i
	}
	for r := range rounds {
		if r > 0 {
			slices.Reverse(order)
		}
		for _, i := range order {
			out := filepath.Join(dir, fmt.Sprintf("out%d.mp4", i))
			cmd := methods[i].cmd(out)
			start := time.Now()
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w: %s", methods[i].name, err, tail(string(b)))
			}
			runs[i] = append(runs[i], coldRun{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()})
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				return fmt.Errorf("%s wrote no video", methods[i].name)
			}
		}
	}
	last := runs[len(runs)-1]
	fmt.Printf("\ncold: a whole convert --interpolate 2 of the %d frames at %dx%d, process start to finished file, median of %d rounds\n",
		len(frames), size.X, size.Y, rounds)
	fmt.Printf("%-18s %8s %8s %22s\n", "method", "wall s", "CPU s", "speed vs minterpolate")
	for i, m := range methods {
		wall := median(runs[i], func(c coldRun) float64 { return c.wall.Seconds() })
		cpu := median(runs[i], func(c coldRun) float64 { return c.cpu.Seconds() })
		speedup := "-"
		if i < len(methods)-1 {
			r := make([]float64, len(last))
			for k := range r {
				r[k] = last[k].wall.Seconds() / runs[i][k].wall.Seconds()
			}
			speedup = fmt.Sprintf("%.2fx (%.2f-%.2f)", median(r, id), slices.Min(r), slices.Max(r))
		}
		fmt.Printf("%-18s %8.2f %8.2f %22s\n", m.name, wall, cpu, speedup)
	}
	return nil
}

// writeFrames writes frames as f_000.png, f_001.png... into dir.
func writeFrames(dir string, frames []*image.NRGBA) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range frames {
		file, err := os.Create(filepath.Join(dir, fmt.Sprintf("f_%03d.png", i)))
		if err != nil {
			return err
		}
		err = png.Encode(file, f)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
