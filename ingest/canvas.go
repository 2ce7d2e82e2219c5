package ingest

import (
	"image"

	"github.com/disintegration/imaging"

	"github.com/img2vid/img2vid"
)

// Canvas is the frame every image is placed on: the video's size.
type Canvas struct {
	// Width and Height are the area the image is fitted into.
	Width, Height int
	Fit           string // img2vid.FitContain, FitCover, FitStretch or FitBlur
}

// Size is the encoded frame size: the canvas rounded up to even sides,
// because H.264 and VP9 in yuv420p need them. The extra row or column is
// black, so an odd-sized image is padded, never resampled.
func (c Canvas) Size() (int, int) { return c.Width + c.Width%2, c.Height + c.Height%2 }

// FitRect returns where an image of srcW x srcH lands on a dstW x dstH area
// for the given fit: centred for contain and blur (letterbox) and cover
// (the rect overflows the area and is cropped); the whole area for stretch.
func FitRect(srcW, srcH, dstW, dstH int, fit string) image.Rectangle {
	if fit == img2vid.FitStretch || (srcW == dstW && srcH == dstH) {
		return image.Rect(0, 0, dstW, dstH)
	}
	// Compare srcW/srcH with dstW/dstH in integers to keep sizes exact.
	wider := int64(srcW)*int64(dstH) > int64(dstW)*int64(srcH)
	var w, h int
	if wider == (fit == img2vid.FitContain || fit == img2vid.FitBlur) { // width decides
		w = dstW
		h = int((int64(srcH)*int64(dstW) + int64(srcW)/2) / int64(srcW))
	} else {
		h = dstH
		w = int((int64(srcW)*int64(dstH) + int64(srcH)/2) / int64(srcH))
	}
	w, h = max(w, 1), max(h, 1)
	x, y := (dstW-w)/2, (dstH-h)/2
	return image.Rect(x, y, x+w, y+h)
}

// Place draws img onto a new canvas-sized frame (see Size). Areas the image
// does not cover are black, or with FitBlur a blurred, dimmed copy of it
// that fills the frame; transparent pixels are composited onto what is
// behind them.
func (c Canvas) Place(img *image.NRGBA) *image.NRGBA {
	fw, fh := c.Size()
	b := img.Bounds()
	r := FitRect(b.Dx(), b.Dy(), c.Width, c.Height, c.Fit)
	if r.Dx() != b.Dx() || r.Dy() != b.Dy() {
		img = imaging.Resize(img, r.Dx(), r.Dy(), imaging.CatmullRom)
	}
	if r == image.Rect(0, 0, fw, fh) && opaque(img) {
		return img
	}
	var dst *image.NRGBA
	if c.Fit == img2vid.FitBlur {
		dst = blurred(img, fw, fh)
	} else {
		dst = image.NewNRGBA(image.Rect(0, 0, fw, fh))
		for i := 3; i < len(dst.Pix); i += 4 {
			dst.Pix[i] = 0xFF
		}
	}
	// Copy the visible part row by row; for cover, r starts off the canvas.
	vis := r.Intersect(dst.Rect)
	for y := vis.Min.Y; y < vis.Max.Y; y++ {
		src := img.Pix[img.PixOffset(vis.Min.X-r.Min.X, y-r.Min.Y):][:4*vis.Dx()]
		row := dst.Pix[dst.PixOffset(vis.Min.X, y):][:4*vis.Dx()]
		for i := 0; i < len(src); i += 4 {
			a := uint32(src[i+3])
			for k := range 3 {
				row[i+k] = uint8((uint32(src[i+k])*a + uint32(row[i+k])*(255-a)) / 255)
			}
		}
	}
	return dst
}

// Blur fit background: made at a quarter of the frame's sides, where the
// blur costs a sixteenth, then scaled up, which the blur hides; dimmed so
// that the image itself stands out.
const (
	blurScale = 4
	blurDim   = 140 // of 255
)

// blurred returns an opaque fw x fh frame of img scaled to cover it,
// blurred and dimmed: FitBlur's background.
func blurred(img *image.NRGBA, fw, fh int) *image.NRGBA {
	sw, sh := max(fw/blurScale, 1), max(fh/blurScale, 1)
	b := img.Bounds()
	r := FitRect(b.Dx(), b.Dy(), sw, sh, img2vid.FitCover)
	small := imaging.CropCenter(imaging.Resize(img, r.Dx(), r.Dy(), imaging.Linear), sw, sh)
	small = imaging.Blur(small, float64(max(sw, sh))/32)
	bg := imaging.Resize(small, fw, fh, imaging.Linear)
	for i := 0; i < len(bg.Pix); i += 4 {
		a := uint32(bg.Pix[i+3]) * blurDim // onto black, then dimmed
		for k := range 3 {
			bg.Pix[i+k] = uint8(uint32(bg.Pix[i+k]) * a / (255 * 255))
		}
		bg.Pix[i+3] = 0xFF
	}
	return bg
}

// opaque reports whether every pixel of img has full alpha.
func opaque(img *image.NRGBA) bool {
	for i := 3; i < len(img.Pix); i += 4 {
		if img.Pix[i] != 0xFF {
			return false
		}
	}
	return true
}
