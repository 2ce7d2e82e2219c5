package testimage

import (
	"bytes"
	"compress/zlib"
	_ "embed" // the CMYK fixture
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"testing"
)

//go:generate /usr/bin/python3 testdata/cmyk.py

// cmykJPEG is Quadrants(64, 32) as a CMYK JPEG with an Adobe marker, made
// by testdata/cmyk.py with Pillow: Go's encoder writes no CMYK.
//
//go:embed testdata/quadrants-cmyk.jpg
var cmykJPEG []byte

// CMYKJPEG returns a 64 x 32 CMYK JPEG of the Quadrants pattern.
func CMYKJPEG() []byte { return bytes.Clone(cmykJPEG) }

// Gray returns a w x h 8-bit grayscale image of level v.
func Gray(w, h int, v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return img
}

// Deep returns a w x h image of c with 16 bits per channel, which PNG
// stores as a 16-bit file.
func Deep(w, h int, c color.NRGBA) *image.NRGBA64 {
	img := image.NewNRGBA64(image.Rect(0, 0, w, h))
	c64 := color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, uint16(c.A) * 257}
	for y := range h {
		for x := range w {
			img.SetNRGBA64(x, y, c64)
		}
	}
	return img
}

// Paletted returns a w x h paletted image of c, whose palette holds c
// exactly.
func Paletted(w, h int, c color.NRGBA) *image.Paletted {
	return image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{c, color.NRGBA{0, 0, 0, 255}})
}

// AnimatedGIF encodes one w x h frame of each colour, in order, as an
// animated GIF.
func AnimatedGIF(t testing.TB, w, h int, colors ...color.NRGBA) []byte {
	t.Helper()
	var g gif.GIF
	for _, c := range colors {
		g.Image = append(g.Image, Paletted(w, h, c))
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BadCRC returns a copy of a PNG with the checksum of its first IDAT chunk
// broken: the header reads fine, the pixels do not.
func BadCRC(t testing.TB, png []byte) []byte {
	t.Helper()
	out := bytes.Clone(png)
	for i := 8; i+8 <= len(out); {
		n := int(binary.BigEndian.Uint32(out[i:]))
		end := i + 8 + n + 4
		if end > len(out) {
			break
		}
		if string(out[i+4:i+8]) == "IDAT" {
			out[end-1] ^= 0xFF
			return out
		}
		i = end
	}
	t.Fatal("BadCRC: no IDAT chunk in the PNG")
	return nil
}

// BilevelTIFF returns a w x h 1-bit (black and white) TIFF, all white,
// deflate-compressed: a few KB of file that decodes to w*h pixels, the
// shape of scanned documents and of memory attacks.
func BilevelTIFF(t testing.TB, w, h int) []byte {
	t.Helper()
	var data bytes.Buffer
	z := zlib.NewWriter(&data)
	row := bytes.Repeat([]byte{0xFF}, (w+7)/8)
	for range h {
		z.Write(row)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		tag, typ uint16
		value    uint32
	}
	const short, long = 3, 4
	entries := []entry{
		{256, long, uint32(w)}, // ImageWidth
		{257, long, uint32(h)}, // ImageLength
		{258, short, 1},        // BitsPerSample
		{259, short, 8},        // Compression: deflate
		{262, short, 1},        // PhotometricInterpretation: black is zero
		{273, long, 0},         // StripOffsets, set below
		{277, short, 1},        // SamplesPerPixel
		{278, long, uint32(h)}, // RowsPerStrip: one strip
		{279, long, uint32(data.Len())},
	}
	ifdAt := uint32(8)
	dataAt := ifdAt + 2 + 12*uint32(len(entries)) + 4
	entries[5].value = dataAt
	var b bytes.Buffer
	b.WriteString("II*\x00")
	binary.Write(&b, binary.LittleEndian, ifdAt)
	binary.Write(&b, binary.LittleEndian, uint16(len(entries)))
	for _, e := range entries {
		binary.Write(&b, binary.LittleEndian, e.tag)
		binary.Write(&b, binary.LittleEndian, e.typ)
		binary.Write(&b, binary.LittleEndian, uint32(1))
		if e.typ == short {
			binary.Write(&b, binary.LittleEndian, [2]uint16{uint16(e.value), 0})
		} else {
			binary.Write(&b, binary.LittleEndian, e.value)
		}
	}
	binary.Write(&b, binary.LittleEndian, uint32(0)) // no next IFD
	b.Write(data.Bytes())
	return b.Bytes()
}
