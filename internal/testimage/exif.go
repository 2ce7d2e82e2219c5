package testimage

import (
	"bytes"
	"encoding/binary"
	"image"
	"testing"
)

// FullEXIFJPEG encodes upright as a JPEG a viewer shows upright under EXIF
// orientation o, as OrientedJPEG does, but with the orientation where a
// header reader is least likely to look: after an APP2 segment of pad bytes
// (as an ICC profile would be), in an EXIF APP1 segment of the largest size
// a segment can have (65,535 bytes with its length), whose IFD0 is at its
// very end.
func FullEXIFJPEG(t testing.TB, upright *image.NRGBA, o, pad int) []byte {
	t.Helper()
	oriented := OrientedJPEG(t, upright, o)
	small := 2 + int(binary.BigEndian.Uint16(oriented[4:6])) // OrientedJPEG's own EXIF segment, dropped
	const segLen = 65535
	payload := make([]byte, segLen-2)
	copy(payload, "Exif\x00\x00")
	tiff := payload[6:]
	copy(tiff, "MM\x00\x2a")
	ifd := len(tiff) - 18 // entry count, one entry, next-IFD offset
	binary.BigEndian.PutUint32(tiff[4:], uint32(ifd))
	binary.BigEndian.PutUint16(tiff[ifd:], 1)
	binary.BigEndian.PutUint16(tiff[ifd+2:], 0x0112)
	binary.BigEndian.PutUint16(tiff[ifd+4:], 3) // SHORT
	binary.BigEndian.PutUint32(tiff[ifd+6:], 1)
	binary.BigEndian.PutUint16(tiff[ifd+10:], uint16(o))
	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8})
	if pad > 0 {
		out.Write([]byte{0xFF, 0xE2, byte((pad + 2) >> 8), byte(pad + 2)})
		out.Write(make([]byte, pad))
	}
	out.Write([]byte{0xFF, 0xE1, segLen >> 8, segLen & 0xFF})
	out.Write(payload)
	out.Write(oriented[2+small:])
	return out.Bytes()
}
