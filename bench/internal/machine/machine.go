// Package machine holds what every benchmark command reports beside its
// figures (the CPU, the load, the process's CPU time) and the small
// statistics and frame loading they share, so that their numbers are
// measured the same way.
package machine

import (
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUModel names the machine's processor, as /proc/cpuinfo does.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// LoadAvg is the first three fields of /proc/loadavg, or why not: figures
// taken on a loaded machine are only upper bounds, so every report says it.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// CPUTime is the CPU time, user and system, the whole process has used.
func CPUTime() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		panic(fmt.Sprintf("getrusage: %v", err))
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// Series is a list of measurements, in seconds.
type Series []float64

// Median is the middle measurement (the mean of the two middle ones for an
// even count): what the reports compare, as one slow run does not move it.
func (s Series) Median() float64 {
	v := slices.Sorted(slices.Values(s))
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// Mean is the average measurement.
func (s Series) Mean() float64 {
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}

// String lists the measurements, whole numbers as they are and the rest
// to three decimals.
func (s Series) String() string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
		if v != math.Trunc(v) {
			parts[i] = fmt.Sprintf("%.3f", v)
		}
	}
	return strings.Join(parts, " ")
}

// DecodeJPEG reads the JPEG at path into NRGBA pixels.
func DecodeJPEG(path string) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	out := image.NewNRGBA(img.Bounds())
	draw.Draw(out, out.Rect, img, img.Bounds().Min, draw.Src)
	return out, nil
}
