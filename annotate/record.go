package annotate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/outfile"
)

// Record is one detection on one frame of the video: a line of the
// detections file.
type Record struct {
	Frame int     `json:"frame"`  // index in the video, from 0
	Time  float64 `json:"time_s"` // Frame / frame rate
	img2vid.Detection
	// Interpolated is set on the frames made between two images: the box
	// is where the object is at that time, moved between its detections
	// on the two images.
	Interpolated bool `json:"interpolated,omitempty"`
}

// Log counts the detections frame by frame for the summary and, when it
// was given a file, writes them there as JSON Lines.
type Log struct {
	path    string
	tmp     *os.File
	w       *bufio.Writer
	enc     *json.Encoder
	classes map[int]*img2vid.ClassSummary
	total   int
	err     error
}

// NewLog starts a log; path "" keeps only the summary. The file appears
// at path only when Commit is called: a failed job leaves none.
func NewLog(path string) (*Log, error) {
	l := &Log{path: path, classes: map[int]*img2vid.ClassSummary{}}
	if path == "" {
		return l, nil
	}
	f, err := outfile.Temp(path, "")
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EINVALID, "cannot create the detections file beside %s: %w", path, err)
	}
	l.tmp, l.w = f, bufio.NewWriterSize(f, 64<<10)
	l.enc = json.NewEncoder(l.w)
	return l, nil
}

// Frame records the detections drawn on frame index at time t.
func (l *Log) Frame(index int, t float64, dets []img2vid.Detection, interpolated bool) {
	count := map[int]int{}
	for _, d := range dets {
		count[d.ClassID]++
		if l.enc != nil && l.err == nil {
			l.err = l.enc.Encode(Record{Frame: index, Time: t, Detection: d, Interpolated: interpolated})
		}
	}
	l.total += len(dets)
	for id, n := range count {
		s := l.classes[id]
		if s == nil {
			s = &img2vid.ClassSummary{}
			l.classes[id] = s
		}
		for _, d := range dets {
			if d.ClassID == id {
				s.Class = d.Class
				break
			}
		}
		s.Frames++
		s.Most = max(s.Most, n)
	}
}

// Summary returns what was found: per class (in class order) the frames
// it is on and the most on one frame.
func (l *Log) Summary(model string) *img2vid.DetectSummary {
	s := &img2vid.DetectSummary{Model: model, Total: l.total, Classes: []img2vid.ClassSummary{}}
	ids := make([]int, 0, len(l.classes))
	for id := range l.classes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s.Classes = append(s.Classes, *l.classes[id])
	}
	return s
}

// Commit writes the file out and puts it at its path.
func (l *Log) Commit() error {
	if l.tmp == nil {
		return nil
	}
	err := l.err
	if err == nil {
		err = l.w.Flush()
	}
	if cerr := l.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(l.tmp.Name(), l.path)
	}
	if err != nil {
		os.Remove(l.tmp.Name())
		return fmt.Errorf("writing the detections to %s: %w", l.path, err)
	}
	l.tmp = nil
	return nil
}

// Abort drops the file: nothing half-written is left.
func (l *Log) Abort() {
	if l.tmp != nil {
		l.tmp.Close()
		os.Remove(l.tmp.Name())
		l.tmp = nil
	}
}
