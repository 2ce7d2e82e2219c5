package video

import (
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"mp4 from raw frames",
			Spec{Input: InputRaw, Width: 642, Height: 482, FPS: 5, Format: img2vid.FormatMP4, Quality: 23, Preset: "veryfast", Output: "/o/v.mp4"},
			"-f rawvideo -framerate 5 -pix_fmt rgb24 -protocol_whitelist pipe -s 642x482 -i pipe:0 -c:v libx264 -crf 23 -f mp4 -metadata comment=img2vid -movflags +faststart -pix_fmt yuv420p -preset veryfast -threads 4 /o/v.mp4 -hide_banner -nostats -loglevel error -progress pipe:3 -y"},
		{"mp4 from JPEG files at a fractional rate",
			Spec{Input: InputJPEG, Width: 1920, Height: 1080, FPS: 29.97, Format: img2vid.FormatMP4, Quality: 18, Preset: "medium", Output: "v.mp4"},
			"-f image2pipe -c:v mjpeg -err_detect explode -framerate 29.97 -protocol_whitelist pipe -i pipe:0 -c:v libx264 -crf 18 -f mp4 -metadata comment=img2vid -movflags +faststart -pix_fmt yuv420p -preset medium -threads 4 v.mp4 -hide_banner -nostats -loglevel error -progress pipe:3 -xerror -y"},
		{"webm maps quality onto VP9's scale",
			Spec{Input: InputRaw, Width: 2, Height: 2, FPS: 20, Format: img2vid.FormatWebM, Quality: 51, Output: "v.webm"},
			"-f rawvideo -framerate 20 -pix_fmt rgb24 -protocol_whitelist pipe -s 2x2 -i pipe:0 -b:v 0 -c:v libvpx-vp9 -cpu-used 5 -crf 63 -deadline good -f webm -metadata comment=img2vid -pix_fmt yuv420p -row-mt 1 -threads 4 v.webm -hide_banner -nostats -loglevel error -progress pipe:3 -y"},
		{"a cap on the output's bytes",
			Spec{Input: InputRaw, Width: 4, Height: 2, FPS: 10, Format: img2vid.FormatGIF, Output: "v.gif", MaxBytes: 1 << 20},
			"-f rawvideo -framerate 10 -pix_fmt rgb24 -protocol_whitelist pipe -s 4x2 -i pipe:0 -f gif -fs 1048576 -vf " + GIFFilter + " v.gif -hide_banner -nostats -loglevel error -progress pipe:3 -y"},
		{"gif with a generated palette",
			Spec{Input: InputRaw, Width: 4, Height: 2, FPS: 10, Format: img2vid.FormatGIF, Output: "v.gif"},
			"-f rawvideo -framerate 10 -pix_fmt rgb24 -protocol_whitelist pipe -s 4x2 -i pipe:0 -f gif -vf " + GIFFilter + " v.gif -hide_banner -nostats -loglevel error -progress pipe:3 -y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(Args(tt.spec), " "); got != tt.want {
				t.Errorf("Args:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	tl := newTail(8)
	tl.Write([]byte("0123456789"))
	tl.Write([]byte("ab"))
	if got := tl.String(); got != "456789ab" {
		t.Errorf("tail = %q, want %q", got, "456789ab")
	}
}
