package video

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/outfile"
)

// soundDemuxers are the containers a soundtrack may be in, by ffmpeg's
// demuxer names ("mov" is MP4 and M4A, "matroska" WebM and MKA). Nothing
// that names other files is among them: an HLS playlist, a concat or
// ffconcat list, an image sequence would make ffmpeg read files (or URLs)
// that were never uploaded into the user's video.
const soundDemuxers = "mp3,aac,mov,wav,ogg,flac,matroska,aiff,caf,w64"

// videoDemuxers are the containers of the silent videos img2vid writes and
// muxes a soundtrack into.
const videoDemuxers = "mov,matroska"

// readOnly returns the options that make ffmpeg read the next input as a
// local file only, in one of the given demuxers: no network protocol, no
// container that opens other files.
func readOnly(demuxers string) []string {
	return []string{"-protocol_whitelist", "file", "-format_whitelist", demuxers}
}

// ProbeAudioArgs returns the ffmpeg argument list that decodes the first
// audio stream of file to nothing, printing progress lines on stdout. A
// full decode, not a header read: it is what proves that the file is sound
// ffmpeg can use, and the last out_time it prints is the exact length. The
// encoder is named (the null muxer's default, PCM) so that a minimal
// ffmpeg build knows what it needs.
func ProbeAudioArgs(file string) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-xerror"}
	args = append(args, readOnly(soundDemuxers)...)
	return append(args, "-i", file, "-map", "0:a:0", "-vn", "-c:a", "pcm_s16le", "-f", "null", "-progress", "pipe:1", "-")
}

// ProbeAudio decodes the soundtrack at file with the ffmpeg at ffmpegPath
// and returns its length in seconds. A file with no audio stream, or one
// the decoder refuses, is an EINVALID error naming it by label (the name
// the user knows it by) with ffmpeg's words.
func ProbeAudio(ctx context.Context, ffmpegPath, file, label string) (float64, error) {
	cmd := exec.CommandContext(ctx, ffmpegPath, ProbeAudioArgs(file)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := newTail(1024)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return 0, img2vid.Errorf(img2vid.EUNAVAILABLE, "ffmpeg not found at %q: install ffmpeg or set IMG2VID_FFMPEG", ffmpegPath)
	}
	if ctx.Err() != nil {
		return 0, img2vid.Errorf(img2vid.ECANCELED, "reading the soundtrack stopped: %w", ctx.Err())
	}
	if err != nil && strings.Contains(stderr.String(), "not on whitelist") {
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s is not a sound file img2vid reads: a playlist or list of other files (HLS, concat) is refused; give MP3, M4A, AAC, WAV, Ogg, FLAC, WebM/MKA, AIFF or CAF", label)
	}
	if err != nil {
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s is not audio that can be decoded (%s)", label, firstLine(stderr.String(), file))
	}
	seconds := lastOutTime(out)
	if seconds <= 0 {
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s holds no sound", label)
	}
	return seconds, nil
}

// lastOutTime returns the last out_time_us of ffmpeg's -progress output,
// in seconds.
func lastOutTime(progress []byte) float64 {
	var us int64
	sc := bufio.NewScanner(bytes.NewReader(progress))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "out_time_us="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				us = n
			}
		}
	}
	return float64(us) / 1e6
}

// firstLine returns the first non-empty line of ffmpeg's stderr with the
// server's file path taken out (it means nothing to the user).
func firstLine(s, file string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if _, rest, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
				line = rest // "[mp3 @ 0x55d0...] " names a decoder instance, not the fault
			}
			line = strings.ReplaceAll(line, file, "the file")
			if len(line) > 160 {
				line = line[:160] + "…"
			}
			return line
		}
	}
	return "no output"
}

// MuxSpec says how a soundtrack joins an encoded video.
type MuxSpec struct {
	Video    string  // the encoded video, copied as it is
	Audio    string  // the soundtrack, encoded for the container
	Format   string  // img2vid.FormatMP4 (AAC) or img2vid.FormatWebM (Opus)
	Duration float64 // the video's length: the audio is cut, or padded with silence, to it
	FadeOut  float64 // seconds of fade-out ending at Duration; 0 for none
	Output   string  // file written
	// MaxBytes, when above 0, is the most the output may take: ffmpeg
	// stops writing there (-fs), and Mux reports ErrMaxBytes.
	MaxBytes int64
}

// MuxArgs returns the ffmpeg argument list that writes m.Output: m.Video's
// stream copied, m.Audio encoded as AAC (MP4) or Opus (WebM), padded with
// silence and cut at exactly m.Duration, so the file is as long as the
// pictures. The filter holds only numbers formatted here: no user text.
func MuxArgs(m MuxSpec) []string {
	secs := func(v float64) string { return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64) }
	filter := "apad"
	if m.FadeOut > 0 {
		filter = fmt.Sprintf("afade=t=out:st=%s:d=%s,apad", secs(max(m.Duration-m.FadeOut, 0)), secs(m.FadeOut))
	}
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"}
	args = append(append(args, readOnly(videoDemuxers)...), "-i", m.Video)
	args = append(append(args, readOnly(soundDemuxers)...), "-i", m.Audio)
	args = append(args, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-af", filter)
	switch m.Format {
	case img2vid.FormatWebM:
		args = append(args, "-c:a", "libopus", "-b:a", "128k", "-f", "webm")
	default:
		args = append(args, "-c:a", "aac", "-b:a", "160k", "-f", "mp4", "-movflags", "+faststart")
	}
	if m.MaxBytes > 0 {
		args = append(args, "-fs", strconv.FormatInt(m.MaxBytes, 10))
	}
	return append(args, "-t", secs(m.Duration), "-y", m.Output)
}

// Mux runs MuxArgs(m) with the ffmpeg at ffmpegPath. Like the encoder it
// writes beside the output and renames only on success, so a failed mux
// leaves nothing behind.
func Mux(ctx context.Context, ffmpegPath string, m MuxSpec) error {
	tmp, err := outfile.Temp(m.Output, ".part")
	if err != nil {
		return img2vid.Errorf(img2vid.EINVALID, "cannot write output %s: %w", m.Output, err)
	}
	tmp.Close()
	final := m.Output
	m.Output = tmp.Name()
	cmd := exec.CommandContext(ctx, ffmpegPath, MuxArgs(m)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := newTail(4096)
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		os.Remove(m.Output)
		if ctx.Err() != nil {
			return img2vid.Errorf(img2vid.ECANCELED, "adding the soundtrack stopped: %w", ctx.Err())
		}
		return fmt.Errorf("ffmpeg adding the soundtrack failed (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	// ffmpeg stops at -fs once the file has reached it, and ends the file
	// cleanly: a file that big was cut short, or is over the cap anyway.
	if fi, err := os.Stat(m.Output); err == nil && m.MaxBytes > 0 && fi.Size() >= m.MaxBytes {
		os.Remove(m.Output)
		return fmt.Errorf("adding the soundtrack: %w (%d bytes)", ErrMaxBytes, m.MaxBytes)
	}
	if err := os.Rename(m.Output, final); err != nil {
		os.Remove(m.Output)
		return img2vid.Errorf(img2vid.EINVALID, "cannot move the video into place at %s: %w", final, err)
	}
	return nil
}
