package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/img2vid/img2vid"
)

// progressBar shows a job's progress: a redrawn bar with ETA on a terminal,
// a plain line every tenth of the way otherwise (logs stay readable).
type progressBar struct {
	w        io.Writer
	terminal bool
	lastDraw time.Time
	lastStep int
}

func newProgressBar(w io.Writer) *progressBar {
	term := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			term = true
		}
	}
	return &progressBar{w: w, terminal: term, lastStep: -1}
}

func (p *progressBar) update(pr img2vid.Progress) {
	if pr.Total == 0 {
		return
	}
	frac := float64(pr.Done) / float64(pr.Total)
	done := pr.Stage == img2vid.StageDone
	if p.terminal {
		if !done && time.Since(p.lastDraw) < 100*time.Millisecond {
			return
		}
		p.lastDraw = time.Now()
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d/%d frames  %s ", strings.Repeat("#", n), strings.Repeat(" ", width-n),
			100*frac, pr.Done, pr.Total, eta(pr, done))
		if done {
			fmt.Fprintln(p.w)
		}
		return
	}
	if step := int(frac * 10); step > p.lastStep || done {
		p.lastStep = step
		fmt.Fprintf(p.w, "%s %3.0f%% %d/%d frames %s\n", pr.Stage, 100*frac, pr.Done, pr.Total, eta(pr, done))
	}
}

func eta(pr img2vid.Progress, done bool) string {
	if done {
		return "in " + (time.Duration(pr.ElapsedMS) * time.Millisecond).Round(time.Millisecond).String()
	}
	if pr.ETAMS <= 0 {
		return ""
	}
	return "ETA " + (time.Duration(pr.ETAMS) * time.Millisecond).Round(time.Second).String()
}
