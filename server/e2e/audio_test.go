package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/server"
)

// sineTone makes a tone of the given length with ffmpeg's sine source.
func sineTone(t *testing.T, name string, seconds float64) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=523:duration=%v", seconds), "-y", path).CombinedOutput(); err != nil {
		t.Fatalf("making %s: %v: %s", name, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postJob sends images, an optional soundtrack and fields as one job and
// returns the status and the body's id or error.
func postJob(t *testing.T, base string, images [][]byte, audioName string, audio []byte, fields map[string]string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for i, img := range images {
		w, _ := mw.CreateFormFile("files", fmt.Sprintf("slide_%d.png", i+1))
		w.Write(img)
	}
	if audio != nil {
		w, _ := mw.CreateFormFile("audio", audioName)
		w.Write(audio)
	}
	mw.Close()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ ID, Error string }
	json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode == http.StatusAccepted {
		return resp.StatusCode, v.ID
	}
	return resp.StatusCode, v.Error
}

// ffprobeStreams returns "type:codec" for each stream of file, and the
// duration of its audio stream (or of the file, for WebM, which keeps
// lengths on the container only).
func ffprobeStreams(t *testing.T, file string) ([]string, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,duration:format=duration",
		"-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var r struct {
		Streams []map[string]any `json:"streams"`
		Format  struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	d, _ := strconv.ParseFloat(r.Format.Duration, 64)
	for _, s := range r.Streams {
		kinds = append(kinds, fmt.Sprintf("%v:%v", s["codec_type"], s["codec_name"]))
		if s["codec_type"] == "audio" {
			if v, ok := s["duration"].(string); ok {
				d, _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return kinds, d
}

// A soundtrack sent with the images comes back in the video, as long as
// the pictures (trim) or holding them until it ends (extend).
func TestSoundtrackThroughTheAPI(t *testing.T) {
	testenv.NeedFFmpeg(t)
	s := newServer(t, nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	var images [][]byte
	for i := range 6 { // 6 images at 2 per second: 3 s
		v := uint8(40 * i)
		images = append(images, testimage.PNG(t, testimage.Solid(96, 64, color.NRGBA{v, 255 - v, 128, 255})))
	}
	tone := sineTone(t, "tone.mp3", 4.5)
	for _, tc := range []struct {
		format, fit string
		want        []string
		length      float64
	}{
		{"mp4", "trim", []string{"video:h264", "audio:aac"}, 3},
		{"webm", "extend", []string{"video:vp9", "audio:opus"}, 4.5},
	} {
		t.Run(tc.format+" "+tc.fit, func(t *testing.T) {
			code, id := postJob(t, ts.URL, images, "tone.mp3", tone, map[string]string{"fps": "2", "format": tc.format, "audio_fit": tc.fit})
			if code != http.StatusAccepted {
				t.Fatalf("POST: %d %s", code, id)
			}
			names, jobs := follow(t, ts.URL, id)
			last := jobs[len(jobs)-1]
			if names[len(names)-1] != server.StatusDone {
				t.Fatalf("job ended %s: %+v", names[len(names)-1], last.Error)
			}
			if r := last.Result; math.Abs(r.Audio-tc.length) > 0.05 || math.Abs(r.Duration-tc.length) > 0.01 {
				t.Errorf("result %+v, want %.1f s of video and sound", r, tc.length)
			}
			resp, err := http.Get(ts.URL + last.Video + "?download=1")
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "video."+tc.format)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.WriteFile(out, b, 0o600)
			if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="slide_1.`+tc.format+`"` {
				t.Errorf("download name %q, want slide_1.%s", cd, tc.format)
			}
			kinds, length := ffprobeStreams(t, out)
			if strings.Join(kinds, ",") != strings.Join(tc.want, ",") || math.Abs(length-tc.length) > 0.06 {
				t.Errorf("ffprobe: streams %v, audio %.3f s; want %v, %.1f s", kinds, length, tc.want, tc.length)
			}
			t.Logf("ffprobe: streams %v, audio %.3f s", kinds, length)
		})
	}
	for what, tc := range map[string]struct {
		name  string
		audio []byte
		field map[string]string
		want  string
	}{
		"garbage": {"notes.ogg", []byte("lyrics, not sound"), nil, `audio file "notes.ogg" is not audio that can be decoded`},
		"gif":     {"tone.mp3", tone, map[string]string{"format": "gif"}, "GIF cannot carry a soundtrack"},
	} {
		code, msg := postJob(t, ts.URL, images, tc.name, tc.audio, tc.field)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want 400 with %q", what, code, msg, tc.want)
		}
	}
}
