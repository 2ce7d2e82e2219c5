package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // registered decoders: every format in Extensions
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/img2vid/img2vid"
)

// headBytes is how much of a file the header is first read from; a header
// that spills past it is read from the stream. (The EXIF orientation is
// read apart, by jpegOrientation, wherever it is.) Every reader given to
// readHeader must buffer this much, or Peek sees less.
const headBytes = 64 << 10

// Header is what can be learnt of an image without decoding its pixels.
type Header struct {
	Format      string // "jpeg", "png", ...
	Width       int    // upright width, after EXIF orientation
	Height      int    // upright height, after EXIF orientation
	Orientation int    // EXIF orientation 1-8; 1 when absent
	CMYK        bool   // a CMYK or YCCK JPEG
	// Plain is set for a JPEG that a walk over all its markers proved to
	// hold exactly one image that ffmpeg decodes as this package does (see
	// PlainJPEG, which also checks the coded data): such a file can be
	// given to the encoder whole.
	Plain bool
	// PixelBytes is the bytes per pixel of the decoder's own form of the
	// pixels, from the colour model the header declares (at most: a YCbCr
	// JPEG counts as 4:4:4), before they are converted to NRGBA.
	PixelBytes int
	working    int64 // the decoder's working memory besides the pixels
}

// width is the stored width, before EXIF orientation.
func (h Header) width() int {
	if h.Orientation >= 5 {
		return h.Height
	}
	return h.Width
}

// DecodeBytes bounds the memory Decode allocates for this image, known
// before a pixel is decoded: the decoder's form of the pixels and its
// working memory (a progressive JPEG's coefficients, a TIFF's strips), the
// NRGBA copy, and another when the orientation turns it. A small file can
// declare many pixels (a 4 KB 1-bit TIFF can be 35 megapixels: 240 MB
// here), so a plan counts this, not the file's size.
func (h Header) DecodeBytes() int64 {
	px := int64(h.Width) * int64(h.Height)
	n := px*int64(h.PixelBytes+4) + h.working
	if h.Orientation != 1 {
		n += 4 * px
	}
	return n
}

// pixelBytes is the bytes per pixel of the image Go's decoders return for
// a colour model.
func pixelBytes(m color.Model) int {
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	}
	return 8 // 16-bit RGBA, or a model not known here
}

// ReadHeader reads the format, size and orientation of the image at path,
// refusing one whose pixel count is above maxPixels (the limit
// img2vid.LimitPixels; 0 means no limit) before any pixel memory is
// allocated: a decompression bomb declares its size up front.
func ReadHeader(path string, maxPixels int64) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, openError(path, err)
	}
	defer f.Close()
	return fileHeader(f, bufio.NewReaderSize(f, headBytes), path, maxPixels, false)
}

// fileHeader reads the header of the open file f through r, which reads f
// from its start, and for a JPEG walks the whole file to set Plain. With
// decode set the walk decodes the JPEG's Huffman-coded data too, and
// damage in it is an error.
func fileHeader(f *os.File, r *bufio.Reader, path string, maxPixels int64, decode bool) (Header, error) {
	h, err := readHeader(r, path, maxPixels)
	if err != nil || h.Format != "jpeg" {
		return h, err
	}
	if h.Orientation = jpegOrientation(f); h.Orientation >= 5 { // the transposing orientations swap the sides
		h.Width, h.Height = h.Height, h.Width
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return h, fmt.Errorf("rewind %s: %w", path, err)
	}
	r.Reset(f)
	frame, notPlain := walkJPEG(r, decode)
	if errors.Is(notPlain, errCorrupt) {
		return h, img2vid.Errorf(img2vid.EINVALID, "%s: cannot decode jpeg: %w", filepath.Base(path), notPlain)
	}
	h.Plain = notPlain == nil
	if frame.marker == markerSOF2 && frame.width == h.width() {
		// A progressive image is decoded coefficient by coefficient: all
		// of them are held (as int32) until the last scan, and the walk
		// keeps a word per block.
		for c := range frame.comps {
			bw, bh := frame.blocks(c)
			h.working += int64(bw) * int64(bh) * (64*4 + 8)
		}
	}
	return h, nil
}

// unsupportedJPEG names the kind of a JPEG that Go's decoder does not read
// (arithmetic-coded, lossless, hierarchical, 12- or 16-bit; ffmpeg 5 reads
// none but the 12-bit kind), or returns "" when head is not one.
func unsupportedJPEG(head []byte) string {
	f, _ := walkJPEG(bufio.NewReader(bytes.NewReader(head)), false)
	switch {
	case f.marker == 0:
		return ""
	case f.marker != markerSOF0 && f.marker != markerSOF1 && f.marker != markerSOF2:
		if f.process() == "arithmetic" {
			return "an arithmetic-coded JPEG"
		}
		return fmt.Sprintf("a %s JPEG", f.process())
	case f.precision != 8:
		return fmt.Sprintf("a %d-bit JPEG", f.precision)
	}
	return ""
}

// PlainJPEG returns nil when data is a plain JPEG: exactly one image, its
// last scan followed by the end-of-image marker and then only padding;
// baseline, extended sequential or progressive Huffman coding of 8-bit
// samples; gray or YCbCr with the usual component ids and sampling; valid
// scan parameters and every table they use defined; Huffman-coded data
// that decodes cleanly. Else it says why not, and the error is a coded
// refusal when the coded data is damaged (see Decode). ffmpeg decodes a
// plain JPEG as this package does, so one can go to the encoder whole;
// anything else is decoded here first. (ReadHeader's Plain checks all but
// the coded data, which costs a few ms a frame.)
func PlainJPEG(data []byte) error {
	_, err := walkJPEG(bufio.NewReader(bytes.NewReader(data)), true)
	if errors.Is(err, errCorrupt) {
		return img2vid.Errorf(img2vid.EINVALID, "cannot decode jpeg: %w", err)
	}
	return err
}

func readHeader(r *bufio.Reader, path string, maxPixels int64) (Header, error) {
	head, _ := r.Peek(headBytes)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		// A large header can spill past the peeked bytes; retry on the stream.
		cfg, format, err = image.DecodeConfig(r)
	}
	if err != nil {
		if why := unsupportedJPEG(head); why != "" {
			return Header{}, img2vid.Errorf(img2vid.EINVALID, "%s: %s is not supported; save it as a baseline or progressive 8-bit JPEG", filepath.Base(path), why)
		}
		return Header{}, img2vid.Errorf(img2vid.EINVALID, "%s: not a readable image: %w", filepath.Base(path), err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Header{}, img2vid.Errorf(img2vid.EINVALID, "%s: image has no pixels (%dx%d)", filepath.Base(path), cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); img2vid.Over(px, maxPixels) {
		return Header{}, img2vid.Limits{Pixels: maxPixels}.Refuse(img2vid.ETOOLARGE, img2vid.LimitPixels,
			"%s: %dx%d is %d pixels", filepath.Base(path), cfg.Width, cfg.Height, px)
	}
	h := Header{Format: format, Width: cfg.Width, Height: cfg.Height, Orientation: 1, PixelBytes: pixelBytes(cfg.ColorModel)}
	if format == "tiff" {
		// Strips are read whole and decompressed into a buffer that grows
		// by doubling: up to twice the pixels' bytes.
		h.working = 2 * int64(cfg.Width) * int64(cfg.Height) * int64(h.PixelBytes)
	}
	if format == "jpeg" {
		h.CMYK = cfg.ColorModel == color.CMYKModel
	}
	return h, nil
}

// Decode reads the image at path into upright NRGBA pixels: EXIF
// orientation applied (Go's decoders ignore it), any colour model (gray,
// paletted, CMYK, 16-bit) converted, the first frame of an animated GIF.
// A JPEG whose Huffman-coded data is damaged is refused even where Go's
// decoder would read past the damage: libjpeg, ffmpeg and Go each do that
// differently, so no output could be called right.
func Decode(path string, maxPixels int64) (*image.NRGBA, Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Header{}, openError(path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, headBytes)
	h, err := fileHeader(f, r, path, maxPixels, true)
	if err != nil {
		return nil, h, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, h, fmt.Errorf("rewind %s: %w", path, err)
	}
	r.Reset(f)
	src, _, err := image.Decode(r)
	if err != nil {
		return nil, h, img2vid.Errorf(img2vid.EINVALID, "%s: cannot decode %s: %w", filepath.Base(path), h.Format, err)
	}
	switch h.Format {
	case "gif":
		return onScreen(src, h.Width, h.Height), h, nil
	case "webp":
		return webpToNRGBA(src), h, nil
	}
	return orient(toNRGBA(src), h.Orientation), h, nil
}

// onScreen places a GIF's first frame at its offset on the GIF's logical
// screen of w x h, which is transparent where the frame does not cover it
// (as browsers show it): a frame smaller than the screen is not stretched.
func onScreen(frame image.Image, w, h int) *image.NRGBA {
	if frame.Bounds() == image.Rect(0, 0, w, h) {
		return toNRGBA(frame)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return dst
}

// toNRGBA converts any decoded image to 8-bit NRGBA, reusing it when it
// already is one.
func toNRGBA(src image.Image) *image.NRGBA {
	if n, ok := src.(*image.NRGBA); ok && n.Rect.Min == (image.Point{}) {
		return n
	}
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Src)
	return dst
}

// orient turns pixels stored with EXIF orientation o upright.
func orient(img *image.NRGBA, o int) *image.NRGBA {
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}

func openError(path string, err error) error {
	if os.IsNotExist(err) {
		return img2vid.Errorf(img2vid.ENOTFOUND, "%s does not exist", path)
	}
	return img2vid.Errorf(img2vid.EINVALID, "cannot open %s: %w", path, err)
}

// jpegOrientation finds the EXIF orientation tag of the JPEG file src,
// returning 1 (upright) when there is none or it is malformed. It walks the
// segments before the image data, whatever their number and size, and
// reads the first EXIF APP1 segment whole, so the tag is found wherever a
// valid segment puts it, up to the segment's largest size (65,535 bytes).
func jpegOrientation(src io.ReaderAt) int {
	r := bufio.NewReaderSize(io.NewSectionReader(src, 0, math.MaxInt64), 4096)
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil || hdr[0] != 0xFF || hdr[1] != 0xD8 {
		return 1
	}
	for {
		if _, err := io.ReadFull(r, hdr[:2]); err != nil || hdr[0] != 0xFF {
			return 1
		}
		marker := hdr[1]
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 {
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // image data starts: no EXIF before it
			return 1
		}
		if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
			return 1
		}
		n := int(binary.BigEndian.Uint16(hdr[2:])) - 2 // the length counts its own two bytes
		if n < 0 {
			return 1
		}
		if marker != 0xE1 {
			if _, err := r.Discard(n); err != nil {
				return 1
			}
			continue
		}
		seg := make([]byte, n)
		if _, err := io.ReadFull(r, seg); err != nil {
			return 1
		}
		if len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return exifOrientation(seg[6:])
		}
	}
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF-structured EXIF block.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	count := int(bo.Uint16(t[ifd:]))
	for k := 0; k < count; k++ {
		e := ifd + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 {
			if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// Image is what a plan needs of the header: the upright size, and whether
// ffmpeg can take the file whole (a plain JPEG that needs no turning).
// label names the image to the user; size is the file's length.
func (h Header) Image(label string, size int64) img2vid.Image {
	return img2vid.Image{Label: label, Width: h.Width, Height: h.Height, Whole: h.Plain && h.Orientation == 1, Bytes: size,
		DecodeBytes: h.DecodeBytes()}
}
