// Package web holds the upload page: plain HTML, CSS and JavaScript with no
// build step and nothing loaded from elsewhere, embedded in the binary.
package web

import "embed"

// Files are the page and its assets, served by the server package.
//
//go:embed index.html app.js detect.js style.css icon.svg
var Files embed.FS
