// Package testimage makes the images tests feed the engine: patterns whose
// pixels are known, EXIF-rotated JPEGs, and hostile files.
package testimage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"testing"

	"github.com/disintegration/imaging"
)

// Quadrants returns a w x h image whose four quadrants are red (top left),
// green (top right), blue (bottom left) and white (bottom right), so any
// flip or rotation shows.
func Quadrants(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, QuadrantColor(x < w/2, y < h/2))
		}
	}
	return img
}

// QuadrantColor is the colour Quadrants paints at the left or right, top
// or bottom quadrant.
func QuadrantColor(left, top bool) color.NRGBA {
	switch {
	case left && top:
		return color.NRGBA{255, 0, 0, 255}
	case top:
		return color.NRGBA{0, 255, 0, 255}
	case left:
		return color.NRGBA{0, 0, 255, 255}
	}
	return color.NRGBA{255, 255, 255, 255}
}

// Solid returns a w x h image of one colour.
func Solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// JPEG encodes img at high quality.
func JPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PNG encodes img.
func PNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// OrientedJPEG returns a JPEG of upright stored the way a camera held in
// EXIF orientation o (1-8) stores it: the pixels transformed, and an EXIF
// orientation tag that tells viewers how to turn them back.
func OrientedJPEG(t testing.TB, upright *image.NRGBA, o int) []byte {
	t.Helper()
	stored := upright
	switch o { // the inverse of what a viewer applies for o
	case 2:
		stored = imaging.FlipH(upright)
	case 3:
		stored = imaging.Rotate180(upright)
	case 4:
		stored = imaging.FlipV(upright)
	case 5:
		stored = imaging.Transpose(upright)
	case 6:
		stored = imaging.Rotate90(upright)
	case 7:
		stored = imaging.Transverse(upright)
	case 8:
		stored = imaging.Rotate270(upright)
	}
	return WithOrientation(JPEG(t, stored), o)
}

// WithOrientation inserts an EXIF APP1 segment holding orientation o right
// after the JPEG's start-of-image marker.
func WithOrientation(jpg []byte, o int) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8)) // IFD0 offset
	binary.Write(&tiff, binary.BigEndian, uint16(1)) // one entry
	binary.Write(&tiff, binary.BigEndian, [6]uint16{0x0112, 3, 0, 1, uint16(o), 0})
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// PNGHeaderOnly returns a PNG that declares w x h pixels in a valid header
// and then ends: a decompression bomb's calling card, harmless unless a
// decoder allocates what the header claims.
func PNGHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	writeChunk(&b, "IHDR", ihdr)
	writeChunk(&b, "IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	return b.Bytes()
}

func writeChunk(b *bytes.Buffer, kind string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(kind))
	crc.Write(data)
	b.WriteString(kind)
	b.Write(data)
	binary.Write(b, binary.BigEndian, crc.Sum32())
}

// Write writes data to path, failing the test on error.
func Write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Noise returns a w x h image of pseudo-random pixels from seed: it
// compresses badly, so its JPEG is large for its size.
func Noise(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range img.Pix {
		x ^= x << 13 // xorshift64
		x ^= x >> 7
		x ^= x << 17
		img.Pix[i] = uint8(x)
		if i%4 == 3 {
			img.Pix[i] = 0xFF
		}
	}
	return img
}
