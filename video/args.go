// Package video drives ffmpeg: argument lists built by pure functions, an
// encoder that takes frames on stdin, and probing of finished files.
package video

import (
	"fmt"
	"strconv"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/img2vid/img2vid"
)

func init() {
	// ffmpeg-go logs every compiled command through the standard logger;
	// the encoder logs what it runs itself.
	ffmpeg.LogCompiledCommand = false
}

// Input kinds for Spec.Input.
const (
	InputRaw  = "raw"  // packed RGB24 frames of Spec.Width x Spec.Height
	InputJPEG = "jpeg" // whole JPEG files, decoded by ffmpeg itself
)

// Spec says what to encode: the frames coming in and the file going out.
type Spec struct {
	Input   string  // InputRaw or InputJPEG
	Width   int     // frame width, even
	Height  int     // frame height, even
	FPS     float64 // frames per second of the output
	Format  string  // img2vid.FormatMP4, FormatWebM or FormatGIF
	Quality int     // CRF-like 0 (best) to 51
	Preset  string  // x264 preset
	Output  string  // file written; the muxer comes from Format, not the name
	// MaxBytes, when above 0, is the most the output may take: ffmpeg
	// stops writing there (-fs), and the encoder reports ErrMaxBytes.
	MaxBytes int64
}

// EncoderThreads caps the encoder's threads. x264 keeps frames in flight
// per thread, so its memory would otherwise grow with the core count; four
// threads keep most of the speed (a job's other stages use the rest).
const EncoderThreads = 4

// progressFD is the file descriptor ffmpeg writes its progress to (-progress
// pipe:3), apart from stderr, so that the encoder learns how many frames
// ffmpeg really encoded.
const progressFD = 3

// GIFFilter gives every frame its own generated palette, dithered, which
// looks far better than ffmpeg's fixed default palette. One palette for the
// whole clip (stats_mode=full) would hold every frame in memory until the
// end; per-frame palettes keep memory flat however long the video. It is a
// constant: no user text ever reaches a filter string.
const GIFFilter = "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1:dither=sierra2_4a"

// Args returns the ffmpeg argument list (without the program name) that
// reads frames from stdin and writes s.Output.
func Args(s Spec) []string {
	rate := strconv.FormatFloat(s.FPS, 'f', -1, 64)
	// The frames come on stdin, in a format named here: ffmpeg opens no
	// other protocol and probes nothing, whatever the bytes hold.
	in := ffmpeg.KwArgs{"framerate": rate, "protocol_whitelist": "pipe"}
	switch s.Input {
	case InputJPEG:
		in["f"] = "image2pipe"
		in["c:v"] = "mjpeg"
		// A damaged file must stop the job (with -xerror below), not
		// become a grey smear in the video.
		in["err_detect"] = "explode"
	default:
		in["f"] = "rawvideo"
		in["pix_fmt"] = "rgb24"
		in["s"] = fmt.Sprintf("%dx%d", s.Width, s.Height)
	}
	out := ffmpeg.KwArgs{}
	switch s.Format {
	case img2vid.FormatWebM:
		out["f"] = "webm"
		out["c:v"] = "libvpx-vp9"
		out["pix_fmt"] = "yuv420p"
		// VP9's CRF scale runs 0-63; map ours (x264's 0-51) onto it.
		out["crf"] = strconv.Itoa((s.Quality*63 + 25) / 51)
		out["b:v"] = "0"
		out["deadline"] = "good"
		out["cpu-used"] = "5"
		out["row-mt"] = "1"
		out["threads"] = strconv.Itoa(EncoderThreads)
	case img2vid.FormatGIF:
		out["f"] = "gif"
		out["vf"] = GIFFilter
	default:
		out["f"] = "mp4"
		out["c:v"] = "libx264"
		out["preset"] = s.Preset
		out["crf"] = strconv.Itoa(s.Quality)
		out["pix_fmt"] = "yuv420p"
		out["threads"] = strconv.Itoa(EncoderThreads)
		// The index at the front lets browsers start playing before the
		// whole file has arrived.
		out["movflags"] = "+faststart"
	}
	// The comment marks the video as this program's, so that a later run
	// may replace it (GIF has no tags: the encoder marks it on its own).
	if s.Format != img2vid.FormatGIF {
		out["metadata"] = "comment=" + Mark
	}
	if s.MaxBytes > 0 {
		out["fs"] = strconv.FormatInt(s.MaxBytes, 10)
	}
	global := []string{"-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:" + strconv.Itoa(progressFD)}
	if s.Input == InputJPEG {
		global = append(global, "-xerror")
	}
	return ffmpeg.Input("pipe:0", in).
		Output(s.Output, out).
		GlobalArgs(global...).
		OverWriteOutput().
		GetArgs()
}
