// Package annotate draws detections on video frames, places them on the
// frames made between two images, and records them: JSON Lines per
// detection and a per-class summary.
package annotate

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"github.com/img2vid/img2vid"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// palette holds bright colours that stay apart from each other and from
// most scenes; class i is drawn in palette[i % len]: the same class, the
// same colour, in every frame and every video.
var palette = []color.NRGBA{
	{230, 25, 75, 255}, {60, 180, 75, 255}, {255, 225, 25, 255}, {0, 130, 200, 255},
	{245, 130, 48, 255}, {145, 30, 180, 255}, {70, 240, 240, 255}, {240, 50, 230, 255},
	{210, 245, 60, 255}, {250, 190, 212, 255}, {0, 128, 128, 255}, {220, 190, 255, 255},
	{170, 110, 40, 255}, {255, 250, 200, 255}, {128, 0, 0, 255}, {170, 255, 195, 255},
	{128, 128, 0, 255}, {255, 215, 180, 255}, {0, 0, 128, 255}, {255, 255, 255, 255},
}

// Colour is the colour class id is drawn in.
func Colour(id int) color.NRGBA {
	return palette[((id%len(palette))+len(palette))%len(palette)]
}

// Scale returns the line width and text scale for a w x h frame: both
// grow with the frame so a label reads the same on a phone-sized video
// and a 4K one (about 1/40 of the shorter side for a line of text).
func Scale(w, h int) (line, text int) {
	short := float64(min(w, h))
	return max(2, int(math.Round(short/360))), max(1, int(math.Round(short/400)))
}

// Draw draws each detection's box and a label (class and score) on img,
// in its class's colour.
func Draw(img *image.NRGBA, dets []img2vid.Detection) {
	line, k := Scale(img.Rect.Dx(), img.Rect.Dy())
	for _, d := range dets {
		c := Colour(d.ClassID)
		b := image.Rect(int(math.Round(d.Box[0])), int(math.Round(d.Box[1])), int(math.Round(d.Box[2])), int(math.Round(d.Box[3]))).Add(img.Rect.Min)
		outline(img, b, line, c)
		label(img, b, fmt.Sprintf("%s %.2f", d.Class, d.Score), k, line, c)
	}
}

// outline draws a rectangle's border, width pixels wide, inside b and
// clipped to img.
func outline(img *image.NRGBA, b image.Rectangle, width int, c color.NRGBA) {
	u := image.NewUniform(c)
	w := min(width, b.Dx(), b.Dy())
	for _, r := range []image.Rectangle{
		{b.Min, image.Pt(b.Max.X, b.Min.Y+w)},
		{image.Pt(b.Min.X, b.Max.Y-w), b.Max},
		{b.Min, image.Pt(b.Min.X+w, b.Max.Y)},
		{image.Pt(b.Max.X-w, b.Min.Y), b.Max},
	} {
		draw.Draw(img, r.Intersect(img.Rect), u, image.Point{}, draw.Src)
	}
}

// label draws text, k times the size of a 7x13 bitmap font, on a tag of
// colour c above the box's top-left corner, or inside the box when there
// is no room above; the tag is kept inside the frame.
func label(img *image.NRGBA, box image.Rectangle, text string, k, line int, c color.NRGBA) {
	face := basicfont.Face7x13
	tw := font.MeasureString(face, text).Ceil()
	th := face.Ascent + face.Descent
	pad := 1
	// The text at its own size, as coverage.
	mask := image.NewAlpha(image.Rect(0, 0, tw+2*pad, th+2*pad))
	(&font.Drawer{Dst: mask, Src: image.Opaque, Face: face, Dot: fixed.P(pad, pad+face.Ascent)}).DrawString(text)
	size := mask.Rect.Size().Mul(k)
	at := image.Pt(box.Min.X, box.Min.Y-size.Y)
	if at.Y < img.Rect.Min.Y {
		at.Y = box.Min.Y + line
	}
	at.X = max(min(at.X, img.Rect.Max.X-size.X), img.Rect.Min.X)
	at.Y = max(min(at.Y, img.Rect.Max.Y-size.Y), img.Rect.Min.Y)
	tag := image.Rectangle{at, at.Add(size)}
	draw.Draw(img, tag.Intersect(img.Rect), image.NewUniform(c), image.Point{}, draw.Src)
	// Black text on light colours, white on dark ones.
	ink := [4]uint8{255, 255, 255, 255}
	if 299*int(c.R)+587*int(c.G)+114*int(c.B) > 150*1000 {
		ink = [4]uint8{0, 0, 0, 255}
	}
	for y := range mask.Rect.Dy() {
		for x := range mask.Rect.Dx() {
			if mask.Pix[y*mask.Stride+x] < 128 {
				continue
			}
			cell := image.Rect(at.X+x*k, at.Y+y*k, at.X+(x+1)*k, at.Y+(y+1)*k).Intersect(img.Rect)
			for py := cell.Min.Y; py < cell.Max.Y; py++ {
				row := img.Pix[img.PixOffset(cell.Min.X, py):img.PixOffset(cell.Max.X, py)]
				for i := 0; i < len(row); i += 4 {
					copy(row[i:i+4], ink[:])
				}
			}
		}
	}
}
