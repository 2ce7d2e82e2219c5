// Package caption draws a line of text under a video frame's picture: in
// the frame's safe area (clear of the edges players and phones cover),
// at a size that reads the same on a phone-sized video and a 4K one, in
// white with a dark outline, legible on any picture. The font is Go's own
// (golang.org/x/image/font/gofont), carried by the binary: Latin, Greek
// and Cyrillic; a character it lacks is drawn as its empty box, never as
// another character.
package caption

import (
	"image"
	"image/color"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The safe area: text stays this far, in fractions of the frame, from the
// bottom and the sides (the title-safe margins of broadcast, which phone
// apps' buttons also respect).
const (
	bottomMargin = 0.08
	sideMargin   = 0.06
	// sizeOfShort is the text's size over the frame's shorter side.
	sizeOfShort = 1.0 / 18
	// MaxLines is how many lines a caption wraps to at most; the rest is
	// cut with an ellipsis.
	MaxLines = 2
)

var (
	parsed struct {
		once sync.Once
		font *opentype.Font
		err  error
	}
	facesMu sync.Mutex
	faces   = map[int]font.Face{}
)

// face is the caption font at size px, parsed once and cached by size.
func face(px int) (font.Face, error) {
	parsed.once.Do(func() { parsed.font, parsed.err = opentype.Parse(gomedium.TTF) })
	if parsed.err != nil {
		return nil, parsed.err
	}
	facesMu.Lock()
	defer facesMu.Unlock()
	if f, ok := faces[px]; ok {
		return f, nil
	}
	f, err := opentype.NewFace(parsed.font, &opentype.FaceOptions{Size: float64(px), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, err
	}
	faces[px] = f
	return f, nil
}

// Overlay is a caption made for one frame size: the text and its outline
// on a transparent ground, and where it goes on the frame. Made once per
// image, it is drawn on each of the image's frames.
type Overlay struct {
	img *image.NRGBA // straight alpha
	at  image.Point  // its top-left corner on the frame
}

// Render makes the overlay of text for a w x h frame: centred above the
// bottom of the safe area, wrapped at spaces to at most MaxLines lines of
// the safe width. An empty text makes no overlay (nil), and nothing is
// drawn.
func Render(w, h int, text string) (*Overlay, error) {
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return nil, nil
	}
	px := max(10, int(float64(min(w, h))*sizeOfShort))
	f, err := face(px)
	if err != nil {
		return nil, err
	}
	lines := wrap(f, text, fixed.I(int(float64(w)*(1-2*sideMargin))))
	m := f.Metrics()
	lineH := m.Height.Ceil()
	pad := max(1, px/14) // the outline's width
	box := image.Rect(0, 0, w, len(lines)*lineH+2*pad)
	mask := image.NewAlpha(box)
	for i, line := range lines {
		x := (w - font.MeasureString(f, line).Ceil()) / 2
		d := &font.Drawer{Dst: mask, Src: image.Opaque, Face: f, Dot: fixed.P(x, pad+i*lineH+m.Ascent.Ceil())}
		d.DrawString(line)
	}
	// The outline: the text's mask grown by pad in every direction, in
	// dark grey under the white text.
	o := &Overlay{img: image.NewNRGBA(box), at: image.Pt(0, h-int(float64(h)*bottomMargin)-box.Dy())}
	for y := range box.Dy() {
		for x := range box.Dx() {
			text := mask.AlphaAt(x, y).A
			var edge uint8
			for dy := -pad; dy <= pad && edge < 255; dy++ {
				for dx := -pad; dx <= pad; dx++ {
					if dx*dx+dy*dy <= pad*pad {
						edge = max(edge, mask.AlphaAt(x+dx, y+dy).A)
					}
				}
			}
			if edge == 0 {
				continue
			}
			// White over the outline's 80 % black, by the text's coverage.
			a := max(text, uint8(uint32(edge)*204/255))
			v := uint8(uint32(text) * 255 / uint32(max(a, 1)))
			o.img.SetNRGBA(x, y, color.NRGBA{v, v, v, a})
		}
	}
	return o, nil
}

// Draw composites the overlay onto dst, a frame of the size it was made
// for. A nil overlay draws nothing.
func (o *Overlay) Draw(dst *image.NRGBA) {
	if o == nil {
		return
	}
	r := o.img.Rect.Add(o.at).Add(dst.Rect.Min).Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		src := o.img.Pix[o.img.PixOffset(r.Min.X-dst.Rect.Min.X-o.at.X, y-dst.Rect.Min.Y-o.at.Y):]
		row := dst.Pix[dst.PixOffset(r.Min.X, y):]
		for i := 0; i < 4*r.Dx(); i += 4 {
			a := uint32(src[i+3])
			if a == 0 {
				continue
			}
			for k := range 3 {
				row[i+k] = uint8((uint32(src[i+k])*a + uint32(row[i+k])*(255-a) + 127) / 255)
			}
		}
	}
}

// wrap breaks text at spaces into lines no wider than width, at most
// MaxLines of them; a word wider than a line, or what does not fit in
// MaxLines, is cut and ends in an ellipsis.
func wrap(f font.Face, text string, width fixed.Int26_6) []string {
	var lines []string
	line := ""
	for _, word := range strings.Split(text, " ") {
		try := word
		if line != "" {
			try = line + " " + word
		}
		if font.MeasureString(f, try) <= width {
			line = try
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = word
	}
	lines = append(lines, line)
	if len(lines) > MaxLines {
		lines = append(lines[:MaxLines-1], strings.Join(lines[MaxLines-1:], " "))
	}
	for i, l := range lines {
		lines[i] = fit(f, l, width)
	}
	return lines
}

// fit cuts s to width, ending in an ellipsis when it had to be cut.
func fit(f font.Face, s string, width fixed.Int26_6) string {
	if font.MeasureString(f, s) <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && font.MeasureString(f, string(r)+"…") > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}
