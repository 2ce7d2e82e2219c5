package ingest

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/img2vid/img2vid"
)

func TestNaturalLess(t *testing.T) {
	got := []string{"frame_10.jpg", "frame_2.jpg", "Frame_1.jpg", "frame_002.jpg", "frame_1b.jpg", "a.png", "frame_1a.jpg", "frame_100.jpg"}
	sort.Slice(got, func(i, j int) bool { return NaturalLess(got[i], got[j]) })
	want := []string{"a.png", "Frame_1.jpg", "frame_1a.jpg", "frame_1b.jpg", "frame_2.jpg", "frame_002.jpg", "frame_10.jpg", "frame_100.jpg"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("natural order:\n got %q\nwant %q", got, want)
	}
	for _, c := range [][2]string{{"x9", "x10"}, {"img99999999999999999999", "img100000000000000000000"}, {"a", "ab"}} {
		if !NaturalLess(c[0], c[1]) || NaturalLess(c[1], c[0]) {
			t.Errorf("want %q < %q", c[0], c[1])
		}
	}
	if NaturalLess("same", "same") {
		t.Error("a name is not less than itself")
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b_10.jpg", "b_9.PNG", "a_1.jpg", "notes.txt", ".hidden.jpg", "skip_1.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub.jpg"), 0o755)
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"all images", nil, nil, []string{"a_1.jpg", "b_9.PNG", "b_10.jpg", "skip_1.jpg"}},
		{"include", []string{"b_*"}, nil, []string{"b_9.PNG", "b_10.jpg"}},
		{"exclude", nil, []string{"skip_*", "*.PNG"}, []string{"a_1.jpg", "b_10.jpg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths, err := List(dir, tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range paths {
				names = append(names, filepath.Base(p))
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("got %q, want %q", names, tt.want)
			}
		})
	}

	if _, err := List(t.TempDir(), nil, nil); img2vid.ErrorCode(err) != img2vid.EINVALID {
		t.Errorf("empty folder: got %v, want an invalid-input error", err)
	}
	if _, err := List(filepath.Join(dir, "missing"), nil, nil); img2vid.ErrorCode(err) != img2vid.ENOTFOUND {
		t.Errorf("missing folder: got %v, want not found", err)
	}
	if _, err := List(dir, []string{"[bad"}, nil); img2vid.ErrorCode(err) != img2vid.EINVALID {
		t.Errorf("bad glob: got %v, want invalid", err)
	}
}
