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
	"path/filepath"
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

// decodedFormat is the format of the file a soundtrack is decoded into,
// once, before anything else reads it: FLAC, lossless (the sound is
// encoded again for the video and loses nothing here), a fraction of raw
// PCM's size and fast both ways. Every later ffmpeg input of the file
// names the format, so no probe ever guesses it again.
const decodedFormat = "flac"

// decodedSound is the filter that gives the decoded sound a bounded
// form: 16 bits, at most 48 kHz and two channels, more than the video's
// AAC at 160k or Opus at 128k keeps. The decoded file's size then follows
// from its length alone: a small upload of many channels at a high rate
// cannot become gigabytes on the server's disk. The filter is fixed text:
// no user input.
const decodedSound = "aformat=sample_fmts=s16:sample_rates=8000|11025|12000|16000|22050|24000|32000|44100|48000:channel_layouts=mono|stereo"

// DecodeAudioArgs returns the ffmpeg argument list that decodes the first
// audio stream of src into dst, a FLAC file of img2vid's own (the sound
// only: no tags, pictures or chapters of the user's), printing progress
// lines on stdout, whose last out_time is the exact length. longest, when
// above 0, is the longest soundtrack taken (max_duration): the decode
// stops a second past it (-t), so an input that never ends, or is far too
// long, costs no more than one that is just over, and still shows as over.
func DecodeAudioArgs(src, dst string, longest time.Duration) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-xerror"}
	args = append(args, readOnly(soundDemuxers)...)
	args = append(args, "-i", src, "-map", "0:a:0", "-vn", "-map_metadata", "-1", "-map_chapters", "-1",
		"-af", decodedSound, "-c:a", "flac")
	if longest > 0 {
		args = append(args, "-t", formatSeconds(longest.Seconds()+1))
	}
	return append(args, "-f", decodedFormat, "-progress", "pipe:1", "-y", dst)
}

// decodeTimeout is the wall-clock bound on decoding a soundtrack of at
// most longest: a minute, plus a fifth of longest. Sound decodes and
// encodes to FLAC at a hundred times its speed or more, so a legitimate
// soundtrack ends well inside it on a busy machine; an input that holds
// ffmpeg without ending (a decoder stuck resyncing on garbage, a file
// that is not one) is stopped by it. 0 (no max_duration) means no bound
// but the caller's context.
func decodeTimeout(longest time.Duration) time.Duration {
	if longest <= 0 {
		return 0
	}
	return time.Minute + longest/5
}

// errDecodeSlow is the cause of a decode stopped at decodeTimeout.
var errDecodeSlow = errors.New("the soundtrack took too long to decode")

// DecodeAudio decodes the first audio stream of the soundtrack at src,
// with the ffmpeg at ffmpegPath, into dst (DecodeAudioArgs), and returns
// its length in seconds. This is the one ffmpeg run over the user's file:
// everything later reads dst, as FLAC. dst is written beside itself and
// renamed into place only when the decode succeeds, so a failure leaves
// no file; dst may be src, which the decoded file then replaces. longest
// is the max_duration limit (0 for none): a longer soundtrack, or one
// that does not decode within decodeTimeout(longest), is an ETOOLARGE
// refusal naming the limit. A file with no audio stream, a playlist or
// list of other files, or one the decoder refuses is an EINVALID error
// naming it by label (the name the user knows it by) with ffmpeg's words.
func DecodeAudio(ctx context.Context, ffmpegPath, src, dst, label string, longest time.Duration) (float64, error) {
	return decodeAudio(ctx, ffmpegPath, src, dst, label, longest, decodeTimeout(longest))
}

// decodeAudio is DecodeAudio with the wall-clock bound given (0 for none).
func decodeAudio(ctx context.Context, ffmpegPath, src, dst, label string, longest, timeout time.Duration) (float64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.part")
	if err != nil {
		return 0, fmt.Errorf("creating the decoded soundtrack: %w", err)
	}
	tmp.Close()
	seconds, err := runDecode(ctx, ffmpegPath, src, tmp.Name(), label, longest, timeout)
	if err == nil {
		if err = os.Rename(tmp.Name(), dst); err != nil {
			err = fmt.Errorf("moving the decoded soundtrack into place: %w", err)
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return seconds, nil
}

// runDecode runs DecodeAudioArgs(src, dst, longest) under timeout and
// makes its failures the errors DecodeAudio documents.
func runDecode(ctx context.Context, ffmpegPath, src, dst, label string, longest, timeout time.Duration) (float64, error) {
	dctx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		dctx, cancel = context.WithTimeoutCause(ctx, timeout, errDecodeSlow)
	}
	defer cancel()
	cmd := exec.CommandContext(dctx, ffmpegPath, DecodeAudioArgs(src, dst, longest)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := newTail(1024)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	lim := img2vid.Limits{Duration: longest}
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return 0, img2vid.Errorf(img2vid.EUNAVAILABLE, "ffmpeg not found at %q: install ffmpeg or set IMG2VID_FFMPEG", ffmpegPath)
	case ctx.Err() != nil:
		return 0, img2vid.Errorf(img2vid.ECANCELED, "reading the soundtrack stopped: %w", ctx.Err())
	case err != nil && errors.Is(context.Cause(dctx), errDecodeSlow):
		return 0, lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitDuration, "%s did not decode within %s", label, timeout)
	case err != nil && strings.Contains(stderr.String(), "not on whitelist"):
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s is not a sound file img2vid reads: a playlist or list of other files (HLS, concat) is refused; give MP3, M4A, AAC, WAV, Ogg, FLAC, WebM/MKA, AIFF or CAF", label)
	case err != nil:
		said := strings.ReplaceAll(stderr.String(), dst, "the decoded file")
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s is not audio that can be decoded (%s)", label, firstLine(said, src))
	}
	seconds := lastOutTime(out)
	switch {
	case seconds <= 0:
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s holds no sound", label)
	case img2vid.Over(seconds, longest.Seconds()):
		return 0, lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitDuration, "%s lasts more than %g s", label, longest.Seconds())
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

// formatSeconds writes seconds for ffmpeg, to the millisecond.
func formatSeconds(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// MuxSpec says how a soundtrack joins an encoded video.
type MuxSpec struct {
	Video    string  // the encoded video, copied as it is
	Audio    string  // the soundtrack as DecodeAudio wrote it (FLAC), encoded for the container
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
// pictures. m.Audio is read as FLAC, named (-f), never probed: it is the
// file DecodeAudio made, and nothing else passes for it. The filter holds
// only numbers formatted here: no user text.
func MuxArgs(m MuxSpec) []string {
	filter := "apad"
	if m.FadeOut > 0 {
		filter = fmt.Sprintf("afade=t=out:st=%s:d=%s,apad", formatSeconds(max(m.Duration-m.FadeOut, 0)), formatSeconds(m.FadeOut))
	}
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"}
	args = append(append(args, readOnly(videoDemuxers)...), "-i", m.Video)
	args = append(append(args, readOnly(decodedFormat)...), "-f", decodedFormat, "-i", m.Audio)
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
	return append(args, "-t", formatSeconds(m.Duration), "-y", m.Output)
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
