package server

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
)

// detections serves a finished job's detections: the JSON Lines file the
// pipeline wrote, or the same as CSV with ?format=csv or an Accept of
// text/csv. ?download=1 makes it an attachment.
func (s *Server) detections(c *gin.Context) {
	st, _, err := s.lookup(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	switch {
	case !st.Detect:
		s.writeError(c, img2vid.Errorf(img2vid.ENOTFOUND, "job %s ran no detect model (set detect_model)", st.ID))
		return
	case st.Status != StatusDone:
		s.writeError(c, img2vid.Errorf(img2vid.ENOTFOUND, "job %s has no detections yet: it is %s", st.ID, st.Status))
		return
	}
	format := c.Query("format")
	if format == "" {
		format = "jsonl"
		if strings.Contains(c.GetHeader("Accept"), "text/csv") {
			format = "csv"
		}
	}
	if format != "jsonl" && format != "csv" {
		s.writeError(c, img2vid.Errorf(img2vid.EINVALID, "format must be jsonl or csv, got %q", truncate(format, 20)))
		return
	}
	f, err := s.cfg.Jobs.Detections(c.Request.Context(), st.ID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer f.Close()
	name := cmp.Or(st.Name, "img2vid-"+st.ID[:8]) + "-detections." + format
	c.Header("Cache-Control", "private, max-age=3600")
	if c.Query("download") == "1" {
		c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	if format == "jsonl" {
		c.Header("Content-Type", "application/jsonl; charset=utf-8")
		http.ServeContent(c.Writer, c.Request, name, f.ModTime, f)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Status(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return
	}
	if err := writeCSV(c.Writer, f); err != nil {
		// The header is out; all that is left is to cut the body short
		// and say why in the log.
		s.log.Error("writing detections as CSV", "job", st.ID, "err", err)
	}
}

// writeCSV turns detection records, one JSON object per line, into CSV
// with a header row.
func writeCSV(w http.ResponseWriter, f io.Reader) error {
	out := csv.NewWriter(w)
	out.Write([]string{"frame", "time_s", "class", "class_id", "score", "x1", "y1", "x2", "y2", "interpolated"})
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r annotate.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("bad record %q: %w", truncate(sc.Text(), 80), err)
		}
		out.Write([]string{strconv.Itoa(r.Frame), num(r.Time), textCell(r.Class), strconv.Itoa(r.ClassID), num(r.Score),
			num(r.Box[0]), num(r.Box[1]), num(r.Box[2]), num(r.Box[3]), strconv.FormatBool(r.Interpolated)})
	}
	out.Flush()
	return cmp.Or(sc.Err(), out.Error())
}

// textCell makes a text cell of the CSV inert in a spreadsheet: one that
// starts with = + - @, a tab or a carriage return would be read as a
// formula (a model's label "=HYPERLINK(...)", say), so it gets a ' in
// front, which spreadsheets show as text and do not display. The numbers
// are written by the program and are left as they are.
func textCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
