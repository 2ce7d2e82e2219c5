package video

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Info is what ffprobe reports of a video's first video stream.
type Info struct {
	Codec    string  // e.g. "h264", "vp9", "gif"
	PixFmt   string  // e.g. "yuv420p"
	Width    int     //
	Height   int     //
	Frames   int     // frames counted by decoding
	FPS      float64 // average frame rate
	Duration float64 // seconds, from the container
	Format   string  // container format names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
}

// Probe runs ffprobe (the program at path ffprobePath) on file, counting
// frames by decoding them, which is exact for every container.
func Probe(ctx context.Context, ffprobePath, file string) (Info, error) {
	cmd := exec.CommandContext(ctx, ffprobePath, "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_frames,avg_frame_rate:format=duration,format_name",
		"-of", "json", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Info{}, fmt.Errorf("ffprobe %s: %w: %s", file, err, strings.TrimSpace(stderr.String()))
	}
	var r struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			PixFmt       string `json:"pix_fmt"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
			AvgFrameRate string `json:"avg_frame_rate"`
		} `json:"streams"`
		Format struct {
			Duration   string `json:"duration"`
			FormatName string `json:"format_name"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return Info{}, fmt.Errorf("ffprobe %s: %w", file, err)
	}
	if len(r.Streams) == 0 {
		return Info{}, fmt.Errorf("ffprobe %s: no video stream", file)
	}
	s := r.Streams[0]
	info := Info{Codec: s.CodecName, PixFmt: s.PixFmt, Width: s.Width, Height: s.Height, Format: r.Format.FormatName}
	info.Frames, _ = strconv.Atoi(s.NbReadFrames)
	info.Duration, _ = strconv.ParseFloat(r.Format.Duration, 64)
	if num, den, ok := strings.Cut(s.AvgFrameRate, "/"); ok {
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		if d != 0 {
			info.FPS = n / d
		}
	}
	return info, nil
}

// Version returns the first line of `ffmpeg -version` (or ffprobe's) for the
// program at path, for diagnostics.
func Version(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "-version").Output()
	if err != nil {
		return "", fmt.Errorf("%s -version: %w", path, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}
