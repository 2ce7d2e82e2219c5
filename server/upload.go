package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/jobs"
)

// maxFieldBytes bounds one option field; no valid value comes close.
const maxFieldBytes = 256

// maxCaptionBytes bounds one captions field: MaxCaptionRunes characters
// of up to four bytes.
const maxCaptionBytes = 4 * img2vid.MaxCaptionRunes

// outputExtensions maps an output format to the video's file name.
var outputExtensions = map[string]string{img2vid.FormatMP4: ".mp4", img2vid.FormatWebM: ".webm", img2vid.FormatGIF: ".gif"}

// createJob reads a multipart upload into a new job folder and queues the
// job. Every limit is checked as early as the data allows: the declared
// size and the queue before anything is read, each file's size and pixel
// count as it arrives, the output's length before the job is queued.
func (s *Server) createJob(c *gin.Context) {
	lim := s.cfg.Limits
	r := c.Request
	if img2vid.Over(r.ContentLength, lim.UploadBytes()) {
		s.writeError(c, lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitUploadMB, "the upload is %d bytes", r.ContentLength))
		return
	}
	client := c.ClientIP() // the peer, or what a trusted proxy says the client is: forwarded headers could name anyone
	j := &job{id: newID(), client: client}
	place, err := s.admit(r.Context(), j.id, r.ContentLength, client)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer place.Release() // an upload that fails gives its place back; a queued job keeps it
	stop := func() {}     // ends the reading of the body (stallGuard's, where there is one)
	if b, ok := r.Body.(*renewingBody); ok {
		stop = b.stop
	}
	if lim.UploadBytes() > 0 {
		r.Body = http.MaxBytesReader(c.Writer, r.Body, lim.UploadBytes())
	}
	mr, err := r.MultipartReader()
	if err != nil {
		s.writeError(c, img2vid.Errorf(img2vid.EINVALID, "send the images as multipart/form-data with one files field per image"))
		return
	}
	ctx := r.Context()
	j.dir = filepath.Join(s.cfg.WorkDir, j.id)
	if err := os.Mkdir(j.dir, 0o700); err != nil {
		s.writeError(c, fmt.Errorf("creating job folder: %w", err))
		return
	}
	receiving := false
	defer func() {
		s.removeUpload(j) // the job system holds the files from here on
		if receiving {    // after the removal: Shutdown waits for the folder to go
			s.doneReceiving(j)
		}
	}()
	if receiving = s.startReceiving(j, stop); !receiving {
		s.writeError(c, img2vid.Errorf(img2vid.EBUSY, "the server is shutting down"))
		return
	}
	if err := s.receive(ctx, mr, j); err != nil {
		if s.shuttingDown() {
			err = img2vid.Errorf(img2vid.EBUSY, "the server is shutting down; send the upload again once it is back")
		}
		s.writeError(c, err)
		return
	}
	if err := s.submit(ctx, j); err != nil {
		s.writeError(c, err)
		return
	}
	place.Submitted()
	s.log.Info("job queued", "job", j.id, "images", len(j.inputs), "bytes", j.bytes)
	c.Header("Location", "/api/jobs/"+j.id)
	c.JSON(http.StatusAccepted, gin.H{"id": j.id, "status": StatusQueued})
}

// job is an upload being received: its folder in the work folder, the
// files stored so far and the options read. Once complete it goes to the
// job system, and the folder goes.
type job struct {
	id     string
	dir    string
	client string // remote IP, counted against Limits.JobsPerClient
	inputs []string
	labels []string // how each input is named to the client: file 3 ("cut.jpg")
	names  []string // each input's file name, as the client sent it
	audio  string   // the stored soundtrack; "" for none
	// audioLabel names the soundtrack to the client; audioLen is its
	// length in seconds.
	audioLabel string
	audioLen   float64
	name       string // the download's name without extension, from the first file's
	opts       img2vid.Options
	images     []img2vid.Image // what each input's header says
	plan       img2vid.Plan    // what the job will make and cost, made before it is submitted
	bytes      int64           // bytes of the folder counted against Limits.DiskBytes
}

// submit hands a received upload to the job system, unless the server
// began shutting down while it arrived. Its place against the admission
// limits was taken before it was read.
func (s *Server) submit(ctx context.Context, j *job) error {
	if s.shuttingDown() {
		return img2vid.Errorf(img2vid.EBUSY, "the server is shutting down")
	}
	plan := j.plan
	spec := jobs.Spec{ID: j.id, Labels: j.labels, Options: j.opts, Name: j.name, Plan: &plan}
	files := slices.Clone(j.inputs)
	for _, in := range j.inputs {
		spec.Inputs = append(spec.Inputs, j.id+"/"+filepath.Base(in))
	}
	if j.audio != "" {
		spec.Audio, spec.AudioLabel = j.id+"/"+filepath.Base(j.audio), j.audioLabel
		files = append(files, j.audio)
	}
	return s.cfg.Jobs.Submit(ctx, spec, files, j.client)
}

// removeUpload deletes an upload's folder and returns its bytes to the
// disk budget.
func (s *Server) removeUpload(j *job) {
	if err := os.RemoveAll(j.dir); err != nil {
		s.log.Error("removing upload folder", "job", j.id, "err", err)
	}
	s.disk.Add(-j.bytes)
}

// admit takes a place for upload id from client against the admission
// limits (the client's jobs, the queue, the disk budget), counted over
// every replica, or refuses it before a byte of it is read. declared is
// the upload's Content-Length (-1: unknown, counted as the most an upload
// may be).
func (s *Server) admit(ctx context.Context, id string, declared int64, client string) (*jobs.Admission, error) {
	if s.shuttingDown() {
		return nil, img2vid.Errorf(img2vid.EBUSY, "the server is shutting down")
	}
	lim := s.cfg.Limits
	if declared < 0 {
		declared = lim.UploadBytes()
	}
	place, err := s.cfg.Jobs.Admit(ctx, jobs.Ask{ID: id, Client: client, Bytes: declared, PerClient: lim.JobsPerClient, DiskBytes: lim.DiskBytes()})
	var full *jobs.Refusal
	switch {
	case errors.As(err, &full) && full.Limit == img2vid.LimitJobsPerClient:
		return nil, lim.Refuse(ETOOMANYJOBS, img2vid.LimitJobsPerClient, "this client already has %d jobs uploading, queued or running", full.Used)
	case errors.As(err, &full) && full.Limit == img2vid.LimitDiskMB:
		return nil, diskFull(lim)
	}
	return place, err
}

// startReceiving records j as an upload in progress, which stop ends, or
// reports false when the server is shutting down.
func (s *Server) startReceiving(j *job, stop func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.receiving[j] = stop
	s.received.Add(1)
	return true
}

// doneReceiving records that the upload of j has ended, its folder queued
// as a job or removed.
func (s *Server) doneReceiving(j *job) {
	s.mu.Lock()
	delete(s.receiving, j)
	s.mu.Unlock()
	s.received.Done()
}

// shuttingDown reports whether Shutdown has begun.
func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// receive stores the files and reads the options of one upload into j.
func (s *Server) receive(ctx context.Context, mr *multipart.Reader, j *job) error {
	fields := map[string]string{}
	var captions, durations []string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.uploadError(err)
		}
		name := part.FormName()
		switch {
		case name == "files":
			err = s.storeFile(part, j)
		case name == "audio":
			err = s.storeAudio(ctx, part, j)
		case name == "captions": // one per image, in the files' order
			var c string
			c, err = readField(part, maxCaptionBytes)
			captions = append(captions, c)
		case name == "durations": // likewise
			var d string
			d, err = readField(part, maxFieldBytes)
			durations = append(durations, d)
		case isOption(name):
			fields[name], err = readField(part, maxFieldBytes)
		default:
			err = img2vid.Errorf(img2vid.EINVALID, "unknown form field %q: send files, audio, captions, durations and the options %s", truncate(name, 40), strings.Join(img2vid.OptionNames(), ", "))
		}
		part.Close()
		if err != nil {
			return err
		}
	}
	if len(j.inputs) == 0 {
		return img2vid.Errorf(img2vid.EINVALID, "no images: send one or more files fields")
	}
	opts, err := img2vid.ParseOptions(func(name string) string { return fields[name] })
	if err != nil {
		return err
	}
	if err := j.caption(captions, opts.Caption); err != nil {
		return err
	}
	if err := j.time(durations); err != nil {
		return err
	}
	opts.Audio = j.audio
	opts.Format = cmp.Or(opts.Format, img2vid.FormatMP4)
	// The whole job is planned, and checked against every limit, before it
	// is queued: nothing that will be refused waits for a worker.
	job := img2vid.Job{Images: j.images, Options: opts, Limits: s.cfg.Limits, AudioSeconds: j.audioLen}
	if opts.NamesModels() && s.cfg.Catalog != nil {
		// A model's reason may name server paths, which clients never see.
		for _, m := range s.cfg.Catalog.ListModels() {
			m.Reason = hidePaths(m.Reason)
			job.Models = append(job.Models, m)
		}
	}
	if j.plan, err = img2vid.MakePlan(job); err != nil {
		return err
	}
	j.opts = j.plan.Options
	return nil
}

// caption gives the job's images their captions: the k-th captions field
// to the k-th file, and with caption=name the file's name (as the client
// sent it) to each image given none.
func (j *job) caption(captions []string, mode string) error {
	if len(captions) > len(j.images) {
		return img2vid.Errorf(img2vid.EINVALID, "%d captions for %d images: send at most one captions field per file, in the files' order", len(captions), len(j.images))
	}
	for k := range j.images {
		if k < len(captions) {
			j.images[k].Caption = strings.TrimSpace(captions[k])
		}
		if j.images[k].Caption == "" && mode == img2vid.CaptionName {
			j.images[k].Caption = img2vid.NameCaption(j.names[k])
		}
	}
	return nil
}

// time gives the job's images their own times on screen: the k-th
// durations field (3s, 1.5s, 500ms; empty: the job's) to the k-th file.
func (j *job) time(durations []string) error {
	if len(durations) > len(j.images) {
		return img2vid.Errorf(img2vid.EINVALID, "%d durations for %d images: send at most one durations field per file, in the files' order", len(durations), len(j.images))
	}
	for k, s := range durations {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return img2vid.Errorf(img2vid.EINVALID, "the duration of %s must be a time such as 3s or 500ms, got %q", j.labels[k], truncate(s, 40))
		}
		j.images[k].Seconds = d.Seconds()
	}
	return nil
}

// storeFile writes one image under a generated name in the job's folder and
// checks its header: a file that is no image, or has more pixels than
// allowed, is refused before anything decodes it.
func (s *Server) storeFile(part *multipart.Part, j *job) error {
	lim := s.cfg.Limits
	n := len(j.inputs) + 1
	label := fmt.Sprintf("file %d (%q)", n, truncate(filepath.Base(part.FileName()), 60))
	if img2vid.Over(n, lim.Files) {
		return lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitFiles, "too many images")
	}
	path := filepath.Join(j.dir, fmt.Sprintf("%06d.upload", n))
	if err := s.storePart(part, j, path, label); err != nil {
		return err
	}
	if n == 1 {
		j.name = downloadName(part.FileName())
	}
	// The header is read, and checked against the limits, as soon as the
	// file is stored: a bomb is refused before the rest of the upload is
	// read, and nothing ever decodes it.
	h, err := ingest.ReadHeader(path, 0)
	if err != nil {
		return relabel(err, filepath.Base(path), label)
	}
	im := h.Image(label, s.partBytes(path))
	if err := lim.CheckImage(im); err != nil {
		return err
	}
	final := strings.TrimSuffix(path, ".upload") + ingest.FormatExtension(h.Format)
	if err := os.Rename(path, final); err != nil {
		return fmt.Errorf("naming upload file: %w", err)
	}
	j.inputs = append(j.inputs, final)
	j.labels = append(j.labels, label)
	j.names = append(j.names, part.FileName())
	j.images = append(j.images, im)
	return nil
}

// partBytes is the size of a stored upload file.
func (s *Server) partBytes(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// relabel names a file by its label in a coded error about it, in place of
// its stored name, which means nothing to the client.
func relabel(err error, stored, label string) error {
	var e *img2vid.Error
	if !errors.As(err, &e) {
		return err
	}
	return &img2vid.Error{Code: e.Code, Message: strings.ReplaceAll(e.Message, stored, label), Limit: e.Limit, Err: err}
}

// storePart writes one uploaded file to path, counting it against the job's
// and the server's disk budget, and refuses it when it is over max_file_mb
// or empty.
func (s *Server) storePart(part *multipart.Part, j *job, path, label string) error {
	lim := s.cfg.Limits
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating upload file: %w", err)
	}
	var src io.Reader = part
	if lim.FileBytes() > 0 {
		src = io.LimitReader(part, lim.FileBytes()+1)
	}
	written, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing upload file: %w", cerr)
	}
	j.bytes += written
	s.disk.Add(written)
	switch {
	case err != nil:
		return s.uploadError(err)
	case img2vid.Over(written, lim.FileBytes()):
		return lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitFileMB, "%s is too large", label)
	case written == 0:
		return img2vid.Errorf(img2vid.EINVALID, "%s is empty", label)
	case img2vid.Over(s.disk.Load(), lim.DiskBytes()):
		return diskFull(lim)
	}
	return nil
}

// storeAudio writes the soundtrack to the job's folder and has it decoded
// once, in full, into a FLAC file of img2vid's own that takes the
// upload's place (Config.ProbeAudio), then named soundtrack.flac: the
// user's file is gone before the job is queued, and the job, on this
// replica or a worker, reads only the decoded one. A file that is not
// sound, or longer than a video may be, is refused by name before the job
// is queued. The decoded file counts against the disk budget in place of
// the upload.
func (s *Server) storeAudio(ctx context.Context, part *multipart.Part, j *job) error {
	label := fmt.Sprintf("audio file %q", truncate(filepath.Base(part.FileName()), 60))
	switch {
	case s.cfg.ProbeAudio == nil:
		return img2vid.Errorf(img2vid.EUNAVAILABLE, "this server does not take a soundtrack")
	case j.audio != "":
		return img2vid.Errorf(img2vid.EINVALID, "send at most one audio field")
	}
	path := filepath.Join(j.dir, "soundtrack.upload")
	if err := s.storePart(part, j, path, label); err != nil {
		return err
	}
	uploaded := s.partBytes(path)
	seconds, err := s.cfg.ProbeAudio(ctx, path, label)
	if err != nil {
		return err
	}
	grown := s.partBytes(path) - uploaded
	j.bytes += grown
	s.disk.Add(grown)
	switch lim := s.cfg.Limits; {
	case img2vid.Over(seconds, lim.Duration.Seconds()):
		return lim.Refuse(img2vid.ETOOLARGE, img2vid.LimitDuration, "%s lasts %.0f s", label, seconds)
	case img2vid.Over(s.disk.Load(), lim.DiskBytes()):
		return diskFull(lim)
	}
	decoded := filepath.Join(j.dir, "soundtrack.flac")
	if err := os.Rename(path, decoded); err != nil {
		return fmt.Errorf("naming the decoded soundtrack: %w", err)
	}
	j.audio, j.audioLabel, j.audioLen = decoded, label, seconds
	return nil
}

// downloadName makes the name a finished video is downloaded under from
// the name of the job's first file: "holiday_001.jpg" gives "holiday_001".
// Only letters, digits, dot, dash and underscore are kept, so the name is
// safe in a header and on any file system; "" when nothing is left.
func downloadName(file string) string {
	base := filepath.Base(strings.ReplaceAll(file, "\\", "/"))
	base = strings.TrimSuffix(base, filepath.Ext(base))
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		case r == ' ' && b.Len() > 0:
			b.WriteRune('_')
		}
		if b.Len() >= 60 {
			break
		}
	}
	return strings.Trim(b.String(), "._")
}

// readField reads one option value, refusing values no option could have.
func readField(part *multipart.Part, limit int) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, int64(limit)+1))
	if err != nil {
		return "", img2vid.Errorf(img2vid.EINVALID, "the upload could not be read: %v", err)
	}
	if len(b) > limit {
		return "", img2vid.Errorf(img2vid.EINVALID, "field %s is longer than %d bytes", part.FormName(), limit)
	}
	return string(b), nil
}

// uploadError names the limit a body that ran over it hit, says when the
// client stopped sending, and otherwise says the upload was cut short or
// malformed.
func (s *Server) uploadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return s.cfg.Limits.Refuse(img2vid.ETOOLARGE, img2vid.LimitUploadMB, "the upload is too large")
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &img2vid.Error{Code: ESTALLED, Err: err, Message: fmt.Sprintf(
			"the upload stalled: nothing arrived for %s (upload_idle=%s); send it again", s.cfg.UploadIdle, s.cfg.UploadIdle)}
	}
	if errors.Is(err, syscall.ENOSPC) {
		return &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: "the server has no disk space left for uploads; try again later", Err: err}
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) { // writing our file failed: not the client's doing
		return fmt.Errorf("storing upload: %w", err)
	}
	return img2vid.Errorf(img2vid.EINVALID, "the upload could not be read (cut short or malformed): %w", err)
}

// diskFull is the refusal of a server whose job folders hold their budget.
func diskFull(lim img2vid.Limits) error {
	return lim.Refuse(img2vid.EBUSY, img2vid.LimitDiskMB, "the disk space for jobs is used up, try again later")
}

// isOption reports whether a form field is one of the job options.
func isOption(name string) bool {
	_, ok := img2vid.OptionByName(name)
	return ok
}
