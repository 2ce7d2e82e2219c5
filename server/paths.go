package server

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/img2vid/img2vid"
)

// absPath matches an absolute file path in a message: a slash at the start
// or after a space, quote, bracket or '=', up to the next space, quote,
// bracket, colon, comma or semicolon.
var absPath = regexp.MustCompile(`(?:^|[\s"'(\[=])(/[^\s"'()\[\]:,;]*)`)

// hidePaths replaces every absolute path in msg with its last element. The
// file's name says what went wrong; the folders of the server (its models
// folder, its work folder, its libraries) are nobody else's business, and
// the log keeps the whole message.
func hidePaths(msg string) string {
	var b strings.Builder
	last := 0
	for _, m := range absPath.FindAllStringSubmatchIndex(msg, -1) {
		start, end := m[2], m[3]
		b.WriteString(msg[last:start])
		b.WriteString(filepath.Base(msg[start:end]))
		last = end
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

// PublicReason is why a dependency does not work (a readiness check's
// error) as a client may see it: the message without the server's
// folders, and for an internal error only where to look. A worker's
// /readyz, served outside this package, says it the same way.
func PublicReason(err error) string {
	if img2vid.ErrorCode(err) == img2vid.EINTERNAL {
		return "a dependency does not work; see the server log"
	}
	return hidePaths(img2vid.ErrorMessage(err))
}

// publicInfo is the runtime's description as clients see it: the library
// by its file name only.
func (s *Server) publicInfo() img2vid.RuntimeInfo {
	info := s.cfg.Catalog.Info()
	if info.Library != "" {
		info.Library = filepath.Base(info.Library)
	}
	info.Note = hidePaths(info.Note)
	return info
}

// publicModels is the catalogue as clients see it: the reason a model
// cannot be used names its files, not the folders they are in.
func (s *Server) publicModels() []img2vid.ModelInfo {
	models := s.cfg.Catalog.ListModels()
	out := make([]img2vid.ModelInfo, len(models))
	for i, m := range models {
		m.Reason = hidePaths(m.Reason)
		out[i] = m
	}
	return out
}
