package video

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/outfile"
)

// Encoder streams frames into an ffmpeg process. The video is written to a
// temporary file beside the output and renamed into place only when ffmpeg
// succeeds, so a failed or canceled job never leaves a half-written file.
type Encoder struct {
	spec   Spec
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tail
	tmp    string
	buf    []byte // one RGB24 frame, reused
	frames int
	waited chan struct{}
	err    error // ffmpeg's exit, set before waited closes
	// encoded is the frame count ffmpeg last reported on its progress
	// pipe; it is final once progressed closes.
	encoded    atomic.Int64
	written    atomic.Int64 // bytes of the output so far, as ffmpeg reports them
	progressed chan struct{}
}

// ErrMaxBytes is the error of an encoder whose output reached
// Spec.MaxBytes: ffmpeg stopped writing there.
var ErrMaxBytes = errors.New("the video reached the most bytes it may take")

// Start launches ffmpeg (the program at path ffmpegPath) for spec. Canceling
// ctx kills ffmpeg; Close or Abort must be called either way.
func Start(ctx context.Context, ffmpegPath string, spec Spec, log *slog.Logger) (*Encoder, error) {
	if log == nil {
		log = slog.Default()
	}
	tmp, err := outfile.Temp(spec.Output, ".part")
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EINVALID, "cannot write output %s: %w", spec.Output, err)
	}
	tmp.Close()
	e := &Encoder{spec: spec, tmp: tmp.Name(), stderr: newTail(4096), waited: make(chan struct{}), progressed: make(chan struct{})}
	final := spec
	final.Output = e.tmp
	args := Args(final)
	e.cmd = exec.CommandContext(ctx, ffmpegPath, args...)
	// SIGKILL on cancel, and a bound on how long a wedged pipe can hold Wait.
	e.cmd.Cancel = func() error { return e.cmd.Process.Signal(syscall.SIGKILL) }
	e.cmd.WaitDelay = 5 * time.Second
	e.cmd.Stderr = e.stderr // exec copies it concurrently, so ffmpeg never blocks on a full stderr pipe
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		os.Remove(e.tmp)
		return nil, fmt.Errorf("ffmpeg stdin: %w", err)
	}
	progress, progressW, err := os.Pipe()
	if err != nil {
		os.Remove(e.tmp)
		return nil, fmt.Errorf("ffmpeg progress pipe: %w", err)
	}
	e.cmd.ExtraFiles = []*os.File{progressW} // fd 3: progressFD
	log.Debug("starting ffmpeg", "path", ffmpegPath, "args", strings.Join(args, " "))
	err = e.cmd.Start()
	progressW.Close() // ffmpeg holds its own copy
	if err != nil {
		progress.Close()
		os.Remove(e.tmp)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "ffmpeg not found at %q: install ffmpeg or set IMG2VID_FFMPEG", ffmpegPath)
		}
		return nil, fmt.Errorf("start ffmpeg: %w", err)
	}
	go e.readProgress(progress)
	go func() {
		e.err = e.cmd.Wait()
		close(e.waited)
	}()
	return e, nil
}

// readProgress keeps the last frame count and output size ffmpeg reports,
// until it closes the pipe.
func (e *Encoder) readProgress(r *os.File) {
	defer close(e.progressed)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, v, _ := strings.Cut(sc.Text(), "=")
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil:
		case key == "frame":
			e.encoded.Store(n)
		case key == "total_size":
			e.written.Store(n)
		}
	}
}

// WriteFrame sends one frame; it must be Spec.Width x Spec.Height. Alpha is
// ignored: the canvas has already composited it.
func (e *Encoder) WriteFrame(img *image.NRGBA) error {
	b := img.Bounds()
	if b.Dx() != e.spec.Width || b.Dy() != e.spec.Height {
		return fmt.Errorf("frame is %dx%d, encoder expects %dx%d", b.Dx(), b.Dy(), e.spec.Width, e.spec.Height)
	}
	n := e.spec.Width * e.spec.Height
	if len(e.buf) != 3*n {
		e.buf = make([]byte, 3*n)
	}
	for y := 0; y < b.Dy(); y++ {
		src := img.Pix[img.PixOffset(b.Min.X, b.Min.Y+y):][:4*b.Dx()]
		dst := e.buf[3*b.Dx()*y:][:3*b.Dx()]
		for i, j := 0, 0; i < len(src); i, j = i+4, j+3 {
			dst[j], dst[j+1], dst[j+2] = src[i], src[i+1], src[i+2]
		}
	}
	return e.write(e.buf)
}

// WriteEncoded sends one whole image file (Spec.Input = InputJPEG).
func (e *Encoder) WriteEncoded(data []byte) error { return e.write(data) }

func (e *Encoder) write(p []byte) error {
	if _, err := e.stdin.Write(p); err != nil {
		// ffmpeg died: its own words say why better than EPIPE does.
		<-e.waited
		return e.failure()
	}
	e.frames++
	return nil
}

// Frames is the number of frames written so far.
func (e *Encoder) Frames() int { return e.frames }

// Encoded is the number of frames ffmpeg encoded: after Close, what the
// video really holds.
func (e *Encoder) Encoded() int { return int(e.encoded.Load()) }

// Written is the size of the output so far, as ffmpeg last reported it.
func (e *Encoder) Written() int64 { return e.written.Load() }

// Close ends the input, waits for ffmpeg and moves the file into place. A
// video that does not hold every frame written is not moved: ffmpeg
// stopped at Spec.MaxBytes (ErrMaxBytes), or lost frames.
func (e *Encoder) Close() error {
	e.stdin.Close()
	<-e.waited
	<-e.progressed
	if e.err != nil {
		return e.failure()
	}
	if e.Encoded() != e.frames {
		if err := e.maxBytes(); err != nil {
			os.Remove(e.tmp)
			return err
		}
		os.Remove(e.tmp)
		return fmt.Errorf("ffmpeg encoded %d frames of the %d it was given: %s", e.Encoded(), e.frames, strings.TrimSpace(e.stderr.String()))
	}
	if e.spec.Format == img2vid.FormatGIF {
		if err := markGIF(e.tmp); err != nil {
			os.Remove(e.tmp)
			return fmt.Errorf("ffmpeg wrote a GIF that cannot be marked: %w", err)
		}
	}
	if err := os.Rename(e.tmp, e.spec.Output); err != nil {
		os.Remove(e.tmp)
		return img2vid.Errorf(img2vid.EINVALID, "cannot move the video into place at %s: %w", e.spec.Output, err)
	}
	return nil
}

// Abort kills ffmpeg, waits for it, and removes the partial file.
func (e *Encoder) Abort() {
	e.stdin.Close()
	if e.cmd.Process != nil {
		e.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-e.waited
	<-e.progressed
	os.Remove(e.tmp)
}

// maxBytes returns ErrMaxBytes when the output has come within a frame's
// worth of Spec.MaxBytes, which is where ffmpeg stops writing.
func (e *Encoder) maxBytes() error {
	if e.spec.MaxBytes <= 0 {
		return nil
	}
	fi, err := os.Stat(e.tmp)
	if err == nil && fi.Size() >= e.spec.MaxBytes*9/10 {
		return fmt.Errorf("%w (%d bytes)", ErrMaxBytes, e.spec.MaxBytes)
	}
	return nil
}

// failure removes the partial file and turns ffmpeg's exit into an error
// that carries the end of what it printed.
func (e *Encoder) failure() error {
	<-e.progressed
	if err := e.maxBytes(); err != nil {
		os.Remove(e.tmp)
		return err
	}
	os.Remove(e.tmp)
	msg := strings.TrimSpace(e.stderr.String())
	if msg == "" {
		msg = "no output"
	}
	if e.err == nil {
		e.err = errors.New("closed its input early")
	}
	err := fmt.Errorf("ffmpeg failed (%v): %s", e.err, msg)
	if strings.Contains(msg, "No space left on device") {
		// Not the user's fault and not a bug: say so, not "internal error".
		return &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: "no space left on the disk for the video", Err: err}
	}
	return err
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
