// Package ingest finds, orders, decodes and places the input images of a
// job: natural sort, EXIF orientation, every common format and colour
// model, and one canvas for frames of mixed sizes.
package ingest

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/img2vid/img2vid"
)

// Extensions are the file extensions read as images, lower case.
var Extensions = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

// IsImageName reports whether name has one of the Extensions.
func IsImageName(name string) bool {
	return slices.Contains(Extensions, strings.ToLower(filepath.Ext(name)))
}

// List returns the images in dir, in natural order (frame_2 before
// frame_10). A name is kept when it matches one of the include globs (all
// names when there are none) and none of the exclude globs; globs match the
// base name, as filepath.Match does. Sub-folders and hidden files are skipped.
func List(dir string, include, exclude []string) ([]string, error) {
	for _, g := range append(append([]string{}, include...), exclude...) {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, img2vid.Errorf(img2vid.EINVALID, "bad glob %q: %w", g, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, img2vid.Errorf(img2vid.ENOTFOUND, "input folder %s does not exist", dir)
		}
		return nil, img2vid.Errorf(img2vid.EINVALID, "cannot read input folder %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !IsImageName(name) {
			continue
		}
		if matchAny(include, name, true) && !matchAny(exclude, name, false) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, img2vid.Errorf(img2vid.EINVALID, "no images in %s (looked for %s)", dir, strings.Join(Extensions, " "))
	}
	sort.Slice(names, func(i, j int) bool { return NaturalLess(names[i], names[j]) })
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	return paths, nil
}

// matchAny reports whether name matches one of globs, or empty when there
// are none.
func matchAny(globs []string, name string, empty bool) bool {
	if len(globs) == 0 {
		return empty
	}
	for _, g := range globs {
		if ok, _ := filepath.Match(g, name); ok {
			return true
		}
	}
	return false
}

// NaturalLess orders strings as people do: runs of digits compare by value,
// so "frame_2" sorts before "frame_10". Other text compares case-insensitively,
// with the exact bytes breaking ties so the order is total.
func NaturalLess(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if i-si != j-sj { // same value, fewer leading zeros first
				return i-si < j-sj
			}
			continue
		}
		la, lb := lower(ca), lower(cb)
		if la != lb {
			return la < lb
		}
		i++
		j++
	}
	if len(a)-i != len(b)-j {
		return len(a)-i < len(b)-j
	}
	return a < b
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// formatExtensions maps the format a header names to the extension a file
// of it is stored under.
var formatExtensions = map[string]string{"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp"}

// FormatExtension is the extension, one of Extensions, for a file whose
// header says format ("jpeg", "png", ...); "" for a format not read here.
func FormatExtension(format string) string { return formatExtensions[format] }
