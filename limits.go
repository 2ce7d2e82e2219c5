package img2vid

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit names. Each is the one name of a limit: the flag is the name with
// dashes (--max-pixels), the environment variable IMG2VID_ and the name in
// capitals (IMG2VID_MAX_PIXELS), and a refusal says "the limit is
// max_pixels=50000000". Values are in the unit the flag takes.
const (
	LimitUploadMB         = "max_upload_mb"
	LimitFileMB           = "max_file_mb"
	LimitFiles            = "max_files"
	LimitPixels           = "max_pixels"
	LimitFrames           = "max_frames"
	LimitDuration         = "max_duration"
	LimitJobTimeout       = "job_timeout"
	LimitDiskMB           = "max_disk_mb"
	LimitMemoryMB         = "max_memory_mb"
	LimitJobsPerClient    = "max_jobs_per_client"
	LimitStreamsPerClient = "max_streams_per_client"
	LimitStreams          = "max_streams"
)

// Limits bound what one job, and on a server all jobs together, may use.
// Each field is in the unit its flag takes. Zero means no limit, everywhere
// (struct, flag and environment); the defaults come from DefaultLimits
// alone.
type Limits struct {
	UploadMB         int64         // max_upload_mb: one upload, files and fields together (server)
	FileMB           int64         // max_file_mb: one image file (server)
	Files            int           // max_files: images in one job
	Pixels           int64         // max_pixels: width x height of any image or frame the job makes
	Frames           int           // max_frames: frames in one video, after interpolation
	Duration         time.Duration // max_duration: length of one video
	JobTimeout       time.Duration // job_timeout: how long one job may run
	DiskMB           int64         // max_disk_mb: all jobs' files together (server)
	MemoryMB         int64         // max_memory_mb: one job's planned peak memory, the process and its ffmpeg together
	JobsPerClient    int           // max_jobs_per_client: jobs queued or running per client address, and uploads in progress (server)
	StreamsPerClient int           // max_streams_per_client: event streams open per client address (server)
	Streams          int           // max_streams: event streams open on one server process, all clients together (server)
}

// DefaultLimits are generous for one person's use and small enough that a
// public server cannot be filled by one client.
func DefaultLimits() Limits {
	return Limits{
		UploadMB:      1024,
		FileMB:        64,
		Files:         2000,
		Pixels:        50_000_000,
		Frames:        20_000,
		Duration:      30 * time.Minute,
		JobTimeout:    30 * time.Minute,
		DiskMB:        8192,
		MemoryMB:      4096,
		JobsPerClient: 4,
		// An event stream holds a goroutine and a descriptor for as long
		// as its job runs. A page follows one job, so 16 is a few tabs on
		// each of a client's 4 jobs, or a handful of people behind one
		// address. 512 is half of 1024, the smallest descriptor limit
		// common on Linux, and leaves the other half for uploads,
		// downloads, NATS and the jobs' files.
		StreamsPerClient: 16,
		Streams:          512,
	}
}

// LimitSpec describes one limit for the flags, the environment, help texts
// and documentation.
type LimitSpec struct {
	Name string // one of the Limit constants
	// Server marks limits only a server enforces: they guard capacity
	// shared between clients, which a command run by its user does not have.
	Server bool
	Usage  string // what it bounds, for --help; the unit is part of the name or said here
	field  func(*Limits) any
}

// Flag is the command-line flag of the limit, without dashes in front.
func (s LimitSpec) Flag() string { return strings.ReplaceAll(s.Name, "_", "-") }

// Env is the environment variable of the limit.
func (s LimitSpec) Env() string { return "IMG2VID_" + strings.ToUpper(s.Name) }

// Field returns a pointer to the limit's field in l: an *int, *int64 or
// *time.Duration.
func (s LimitSpec) Field(l *Limits) any { return s.field(l) }

// LimitTable lists every limit, in the order help texts show them.
var LimitTable = []LimitSpec{
	{LimitUploadMB, true, "largest upload (all files of one job), MiB", func(l *Limits) any { return &l.UploadMB }},
	{LimitFileMB, true, "largest image file, MiB", func(l *Limits) any { return &l.FileMB }},
	{LimitFiles, false, "most images in one job", func(l *Limits) any { return &l.Files }},
	{LimitPixels, false, "most pixels (width x height) in any image, model output or frame", func(l *Limits) any { return &l.Pixels }},
	{LimitFrames, false, "most frames in one video, after interpolation", func(l *Limits) any { return &l.Frames }},
	{LimitDuration, false, "longest video", func(l *Limits) any { return &l.Duration }},
	{LimitJobTimeout, false, "longest a job may run", func(l *Limits) any { return &l.JobTimeout }},
	{LimitDiskMB, true, "most disk all jobs together may use, MiB", func(l *Limits) any { return &l.DiskMB }},
	{LimitMemoryMB, false, "most memory one job may need at its peak, its ffmpeg included, MiB (estimated from the headers before it starts)", func(l *Limits) any { return &l.MemoryMB }},
	{LimitJobsPerClient, true, "most jobs one client address may have queued or running, and uploads in progress; beyond it 429", func(l *Limits) any { return &l.JobsPerClient }},
	{LimitStreamsPerClient, true, "most event streams one client address may have open; beyond it 429", func(l *Limits) any { return &l.StreamsPerClient }},
	{LimitStreams, true, "most event streams open on this server, all clients together; beyond it 429", func(l *Limits) any { return &l.Streams }},
}

// LimitByName returns the spec of the named limit.
func LimitByName(name string) (LimitSpec, bool) {
	for _, s := range LimitTable {
		if s.Name == name {
			return s, true
		}
	}
	return LimitSpec{}, false
}

// Value formats the named limit's value in l as its flag takes it.
func (l Limits) Value(name string) string {
	s, ok := LimitByName(name)
	if !ok {
		return "?"
	}
	switch p := s.Field(&l).(type) {
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *time.Duration:
		return p.String()
	}
	return "?"
}

// Validate refuses negative limits, naming the first.
func (l Limits) Validate() error {
	for _, s := range LimitTable {
		neg := false
		switch p := s.Field(&l).(type) {
		case *int:
			neg = *p < 0
		case *int64:
			neg = *p < 0
		case *time.Duration:
			neg = *p < 0
		}
		if neg {
			return Errorf(EINVALID, "%s must be 0 (no limit) or more, got %s", s.Name, l.Value(s.Name))
		}
	}
	return nil
}

// Refuse returns an error with code saying what went over the named limit:
// the formatted text, then "; the limit is NAME=VALUE". The error carries
// the limit's name for metrics and clients.
func (l Limits) Refuse(code, name, format string, args ...any) error {
	err := Errorf(code, format, args...).(*Error)
	err.Message = fmt.Sprintf("%s; the limit is %s=%s", err.Message, name, l.Value(name))
	err.Limit = name
	return err
}

// Over reports whether v is above a limit of max, where 0 means no limit.
func Over[T int | int64 | time.Duration | float64](v, max T) bool { return max > 0 && v > max }

// UploadBytes is UploadMB in bytes; 0 when there is no limit.
func (l Limits) UploadBytes() int64 { return l.UploadMB << 20 }

// FileBytes is FileMB in bytes; 0 when there is no limit.
func (l Limits) FileBytes() int64 { return l.FileMB << 20 }

// MemoryBytes is MemoryMB in bytes; 0 when there is no limit.
func (l Limits) MemoryBytes() int64 { return l.MemoryMB << 20 }

// DiskBytes is DiskMB in bytes; 0 when there is no limit.
func (l Limits) DiskBytes() int64 { return l.DiskMB << 20 }
