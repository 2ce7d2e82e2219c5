package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// JPEG marker codes (ITU T.81, table B.1) the walk tells apart.
const (
	markerSOF0 = 0xC0 // baseline
	markerSOF1 = 0xC1 // extended sequential, Huffman
	markerSOF2 = 0xC2 // progressive, Huffman
	markerDHT  = 0xC4
	markerDAC  = 0xCC // arithmetic conditioning
	markerRST0 = 0xD0
	markerRST7 = 0xD7
	markerSOI  = 0xD8
	markerEOI  = 0xD9
	markerSOS  = 0xDA
	markerDQT  = 0xDB
	markerDRI  = 0xDD
	markerAPP0 = 0xE0
	markerAP14 = 0xEE // Adobe: the colour transform
	markerAP15 = 0xEF
	markerCOM  = 0xFE
)

// maxPlainScans bounds the scans of a plain progressive JPEG. A complete
// progression needs at most a few dozen (cjpeg writes 10); every scan is a
// pass over the whole image for the decoder, so thousands of tiny scans are
// a way to make a small file expensive.
const maxPlainScans = 256

// jpegComponent is one component of a JPEG frame.
type jpegComponent struct {
	id   byte
	h, v int // sampling factors
	tq   int // quantisation table
}

// jpegFrame is what a JPEG's start-of-frame segment declares.
type jpegFrame struct {
	marker        byte // the SOFn marker: the coding process
	precision     int  // bits per sample
	width, height int
	comps         []jpegComponent
}

// process names the frame's coding process for messages.
func (f jpegFrame) process() string {
	switch f.marker {
	case markerSOF0:
		return "baseline"
	case markerSOF1:
		return "extended sequential"
	case markerSOF2:
		return "progressive"
	case 0xC3, 0xC7, 0xCB, 0xCF:
		return "lossless"
	case 0xC5, 0xC6, 0xCD, 0xCE:
		return "hierarchical"
	case 0xC9, 0xCA:
		return "arithmetic"
	}
	return fmt.Sprintf("SOF marker 0x%02X", f.marker)
}

// errNotJPEG is returned by walkJPEG for data that does not start like a
// JPEG at all.
var errNotJPEG = errors.New("no start-of-image marker")

// errCorrupt marks damage in a JPEG's coded data that decoders handle each
// their own way (libjpeg warns and carries on, ours reads past it
// differently, ffmpeg stops): no decode of such a file can be called right.
var errCorrupt = errors.New("corrupt JPEG data")

// walkJPEG reads the JPEG file in r from its start-of-image marker and says
// whether it is plain: nil when it is, else why not. A plain JPEG is one
// that ffmpeg's decoder and ours turn into the same pixels, so it can be
// handed to ffmpeg whole:
//   - exactly one image: one frame, its last scan followed by the
//     end-of-image marker, and after that only padding (0x00 or 0xFF
//     bytes), because ffmpeg starts a new frame at every start-of-image
//     marker in its input;
//   - baseline, extended sequential (one scan of every component) or
//     progressive (a complete, valid progression) Huffman coding of 8-bit
//     samples;
//   - gray, or YCbCr with the component ids 1, 2, 3, chroma at 4:4:4,
//     4:2:2, 4:4:0 or 4:2:0, and no Adobe marker saying otherwise (ffmpeg
//     and libjpeg do not agree on RGB-coded files);
//   - every table a scan refers to defined and well formed, restart
//     markers where the restart interval puts them, no data in between.
//
// With decode set it also decodes every scan's Huffman-coded data (not the
// pixels) of a frame this package's decoder reads, plain or not, and
// returns an error wrapping errCorrupt when that data is damaged: a code
// no table holds, a block of more than 64 coefficients, a refinement out
// of step, data that ends early or runs on past its last block, a block
// that no 8-bit picture makes.
//
// The frame it returns is filled as far as the walk got, so a caller can
// still learn the size and coding of a file that is not plain.
func walkJPEG(r *bufio.Reader, decode bool) (jpegFrame, error) {
	w := jpegWalker{r: r, adobe: -1, decode: decode}
	err := w.walk()
	if err == nil || !errors.Is(err, errCorrupt) && w.notPlain != nil {
		err = w.notPlain
	}
	if w.frame == nil {
		return jpegFrame{}, err
	}
	return *w.frame, err
}

// jpegWalker holds what a walk has seen so far.
type jpegWalker struct {
	r        *bufio.Reader
	decode   bool // decode the Huffman-coded data, to find damage in it
	notPlain error
	frame    *jpegFrame
	adobe    int           // Adobe APP14 transform; -1 when there is none
	dc, ac   [4]*huffTable // Huffman tables; nil until defined
	quant    [4]bool       // quantisation tables defined
	steps    [4][64]uint16 // their steps, in zigzag order
	interval int           // restart interval in MCUs; 0 for none
	scans    int           // scans seen
	coefBits [][64]int8    // each coefficient's low bit so far, -1 before its first scan
	nonzero  [][]uint64    // progressive, decoding: per component and block, the coefficients seen nonzero
	energy   [][]float32   // decoding: per component and block, the dequantised coefficients' energy
}

// odd records a reason the file is not plain; the walk goes on, since a
// file that is not plain may still be decoded (and checked) here.
func (w *jpegWalker) odd(format string, args ...any) {
	if w.notPlain == nil {
		w.notPlain = fmt.Errorf(format, args...)
	}
}

// decodable reports whether the frame is one whose coded data the walk
// can decode: what this package's decoder reads.
func (w *jpegWalker) decodable() bool {
	f := w.frame
	return w.decode && f != nil && f.precision == 8 && len(f.comps) >= 1 && len(f.comps) <= 4 &&
		(f.marker == markerSOF0 || f.marker == markerSOF1 || f.marker == markerSOF2)
}

// walk returns the first error that stops it: damage in the coded data
// (errCorrupt) or structure it cannot follow.
func (w *jpegWalker) walk() error {
	var soi [2]byte
	if _, err := io.ReadFull(w.r, soi[:]); err != nil || soi[0] != 0xFF || soi[1] != markerSOI {
		return errNotJPEG
	}
	marker, err := w.nextMarker()
	for err == nil {
		switch {
		case marker == markerEOI:
			return w.end()
		case marker == markerSOS:
			marker, err = w.scan()
			continue
		case marker >= 0xC0 && marker <= 0xCF && marker != markerDHT && marker != 0xC8 && marker != markerDAC:
			err = w.sof(marker)
		case marker == markerDHT:
			err = w.dht()
		case marker == markerDQT:
			err = w.dqt()
		case marker == markerDRI:
			err = w.dri()
		case marker == markerAP14:
			err = w.app14()
		case marker >= markerAPP0 && marker <= markerAP15 || marker == markerCOM:
			_, err = w.segment(false)
		case marker == markerDAC:
			w.odd("arithmetic-coding conditioning (DAC) marker")
			_, err = w.segment(false)
		default:
			err = fmt.Errorf("unexpected marker 0x%02X", marker)
		}
		if err == nil {
			marker, err = w.nextMarker()
		}
	}
	return err
}

// nextMarker reads the marker that must come next between segments: fill
// bytes (0xFF) may precede it; other bytes are skipped, as decoders do,
// but make the file not plain.
func (w *jpegWalker) nextMarker() (byte, error) {
	b, err := w.r.ReadByte()
	for err == nil && b != 0xFF {
		w.odd("data between segments")
		b, err = w.r.ReadByte()
	}
	for err == nil && b == 0xFF {
		b, err = w.r.ReadByte()
	}
	if err != nil {
		return 0, truncated(err)
	}
	if b == 0 || b >= markerRST0 && b <= markerRST7 {
		return 0, fmt.Errorf("marker 0x%02X outside a scan", b)
	}
	return b, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("ends before its end-of-image marker")
	}
	return err
}

// segment reads a marker segment's length and then its body, which it
// returns when keep is true and skips otherwise.
func (w *jpegWalker) segment(keep bool) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(w.r, l[:]); err != nil {
		return nil, truncated(err)
	}
	n := int(l[0])<<8 | int(l[1])
	if n < 2 {
		return nil, errors.New("segment length below 2")
	}
	if !keep {
		if _, err := w.r.Discard(n - 2); err != nil {
			return nil, truncated(err)
		}
		return nil, nil
	}
	body := make([]byte, n-2)
	if _, err := io.ReadFull(w.r, body); err != nil {
		return nil, truncated(err)
	}
	return body, nil
}

func (w *jpegWalker) sof(marker byte) error {
	if w.frame != nil {
		return errors.New("more than one frame (start-of-frame marker)")
	}
	b, err := w.segment(true)
	if err != nil {
		return err
	}
	if len(b) < 6 {
		return errors.New("short start-of-frame segment")
	}
	f := jpegFrame{marker: marker, precision: int(b[0]), height: int(b[1])<<8 | int(b[2]), width: int(b[3])<<8 | int(b[4])}
	n := int(b[5])
	if n == 0 || len(b) != 6+3*n {
		return errors.New("start-of-frame length does not match its components")
	}
	for i := range n {
		c := b[6+3*i:]
		comp := jpegComponent{id: c[0], h: int(c[1] >> 4), v: int(c[1] & 15), tq: int(c[2])}
		if comp.h < 1 || comp.h > 4 || comp.v < 1 || comp.v > 4 || comp.tq > 3 {
			return fmt.Errorf("component sampling %dx%d, table %d", comp.h, comp.v, comp.tq)
		}
		for _, prev := range f.comps {
			if prev.id == comp.id {
				return errors.New("repeated component id")
			}
		}
		f.comps = append(f.comps, comp)
	}
	w.frame = &f
	switch {
	case marker != markerSOF0 && marker != markerSOF1 && marker != markerSOF2:
		w.odd("%s coding", f.process())
	case f.precision != 8:
		w.odd("%d-bit samples", f.precision)
	case f.width == 0 || f.height == 0:
		return errors.New("no size in its start-of-frame (DNL)")
	}
	switch n {
	case 1:
		if c := f.comps[0]; c.h != 1 || c.v != 1 {
			w.odd("gray component with sampling %dx%d", c.h, c.v)
		}
	case 3:
		y, cb, cr := f.comps[0], f.comps[1], f.comps[2]
		if y.id != 1 || cb.id != 2 || cr.id != 3 {
			w.odd("component ids %d, %d, %d (not YCbCr's 1, 2, 3)", y.id, cb.id, cr.id)
		}
		if cb.h != 1 || cb.v != 1 || cr.h != 1 || cr.v != 1 || y.h > 2 || y.v > 2 {
			w.odd("sampling %dx%d, %dx%d, %dx%d", y.h, y.v, cb.h, cb.v, cr.h, cr.v)
		}
	default:
		w.odd("%d components", n)
	}
	w.coefBits = make([][64]int8, n)
	for i := range w.coefBits {
		for k := range w.coefBits[i] {
			w.coefBits[i][k] = -1
		}
	}
	return nil
}

func (w *jpegWalker) dht() error {
	b, err := w.segment(true)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		if len(b) < 17 {
			return errors.New("short Huffman table")
		}
		class, id := b[0]>>4, int(b[0]&15)
		if class > 1 || id > 3 {
			return fmt.Errorf("Huffman table class %d id %d", class, id)
		}
		total := 0
		for _, n := range b[1:17] {
			total += int(n)
		}
		if total == 0 || total > 256 || len(b) < 17+total {
			return errors.New("bad Huffman table size")
		}
		t := &huffTable{bad: errors.New("a Huffman table with more codes than fit")}
		if ht, err := newHuffTable(b[1:17], b[17:17+total]); err == nil {
			t = ht
		}
		if class == 0 {
			for _, s := range t.vals {
				switch {
				case s > 15 && t.bad == nil: // libjpeg refuses the table
					t.bad = fmt.Errorf("a DC Huffman table with symbol %d", s)
				case s > 11: // an 8-bit sample's DC difference has at most 11 bits
					w.odd("DC Huffman symbol %d", s)
				}
			}
			w.dc[id] = t
		} else {
			w.ac[id] = t
		}
		if t.bad != nil {
			w.odd("%v", t.bad)
		}
		b = b[17+total:]
	}
	return nil
}

func (w *jpegWalker) dqt() error {
	b, err := w.segment(true)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		pq, id := b[0]>>4, int(b[0]&15)
		size := 64 << pq
		if pq > 1 || id > 3 || len(b) < 1+size {
			return errors.New("bad quantisation table")
		}
		for k := range 64 {
			q := uint16(b[1+k])
			if pq == 1 {
				q = uint16(b[1+2*k])<<8 | uint16(b[2+2*k])
			}
			if q == 0 {
				w.odd("quantisation table with a zero step")
			}
			w.steps[id][k] = q
		}
		w.quant[id] = true
		b = b[1+size:]
	}
	return nil
}

func (w *jpegWalker) dri() error {
	b, err := w.segment(true)
	if err != nil {
		return err
	}
	if len(b) != 2 {
		return errors.New("bad restart interval segment")
	}
	w.interval = int(b[0])<<8 | int(b[1])
	return nil
}

func (w *jpegWalker) app14() error {
	b, err := w.segment(true)
	if err != nil {
		return err
	}
	if len(b) >= 12 && string(b[:5]) == "Adobe" {
		w.adobe = int(b[11])
	}
	return nil
}

// jpegScan is one start-of-scan header.
type jpegScan struct {
	comps          []int // indices into the frame's components, in frame order
	td, ta         []int // each component's DC and AC Huffman table
	ss, se, ah, al int   // spectral selection, successive approximation
}

// scan checks a start-of-scan header against the frame and the tables,
// then walks (or decodes) the entropy-coded data to the marker that ends
// it, which it returns.
func (w *jpegWalker) scan() (byte, error) {
	f := w.frame
	if f == nil {
		return 0, errors.New("a scan before the start-of-frame marker")
	}
	b, err := w.segment(true)
	if err != nil {
		return 0, err
	}
	if len(b) < 1 || len(b) != 4+2*int(b[0]) || b[0] < 1 || b[0] > 4 {
		return 0, errors.New("bad start-of-scan length")
	}
	n := int(b[0])
	s := jpegScan{ss: int(b[1+2*n]), se: int(b[2+2*n]), ah: int(b[3+2*n] >> 4), al: int(b[3+2*n] & 15)}
	next, blocks := 0, 0
	for i := range n {
		id, td, ta := b[1+2*i], int(b[2+2*i]>>4), int(b[2+2*i]&15)
		k := next
		for k < len(f.comps) && f.comps[k].id != id {
			k++
		}
		if k == len(f.comps) {
			return 0, fmt.Errorf("scan component %d not in the frame, repeated or out of order", id)
		}
		next = k + 1
		if td > 3 || ta > 3 {
			return 0, errors.New("Huffman table id above 3")
		}
		s.comps, s.td, s.ta = append(s.comps, k), append(s.td, td), append(s.ta, ta)
		if !w.quant[f.comps[k].tq] {
			// libjpeg refuses the file; Go's decoder uses a table of zeros.
			return 0, fmt.Errorf("%w: quantisation table %d used before it is defined", errCorrupt, f.comps[k].tq)
		}
		if s.ss == 0 && s.ah == 0 {
			if err := usable(w.dc[td], "DC", td); err != nil {
				return 0, err
			}
		}
		if s.se > 0 {
			if err := usable(w.ac[ta], "AC", ta); err != nil {
				return 0, err
			}
		}
		blocks += f.comps[k].h * f.comps[k].v
	}
	if n > 1 && blocks > 10 {
		return 0, errors.New("too many blocks in an MCU")
	}
	w.scans++
	if f.marker == markerSOF2 {
		if err := w.progression(s); err != nil {
			return 0, err
		}
	} else {
		if w.scans > 1 || n != len(f.comps) {
			w.odd("sequential image in more than one scan")
		}
		if s.ss != 0 || s.se != 63 || s.ah != 0 || s.al != 0 {
			return 0, fmt.Errorf("sequential scan with Ss=%d Se=%d Ah=%d Al=%d", s.ss, s.se, s.ah, s.al)
		}
		for _, c := range s.comps {
			for k := range w.coefBits[c] {
				w.coefBits[c][k] = 0
			}
		}
	}
	if w.decodable() {
		return w.decodeScan(s)
	}
	return w.entropyData(w.mcus(s.comps))
}

// usable says why a scan cannot use Huffman table t of a class and id: it
// is not defined, or it is one libjpeg refuses (codes that do not fit, a
// DC symbol above 15), which decoders that take it read each their own way.
func usable(t *huffTable, class string, id int) error {
	switch {
	case t == nil:
		return fmt.Errorf("%s Huffman table %d used before it is defined", class, id)
	case t.bad != nil:
		return fmt.Errorf("%w: %v", errCorrupt, t.bad)
	}
	return nil
}

// progression checks one progressive scan's spectral selection and
// successive approximation against what earlier scans coded, as libjpeg
// does: parameters it refuses stop the walk; an inconsistent sequence,
// which it warns of and decodes its own way, is damage.
func (w *jpegWalker) progression(s jpegScan) error {
	if w.scans > maxPlainScans {
		w.odd("more than %d scans", maxPlainScans)
	}
	bad := s.ss > s.se || s.se > 63 || s.al > 13 || s.ah != 0 && s.al != s.ah-1 ||
		s.ss == 0 && s.se != 0 || s.ss > 0 && len(s.comps) != 1
	if bad {
		return fmt.Errorf("bad progressive scan parameters Ss=%d Se=%d Ah=%d Al=%d", s.ss, s.se, s.ah, s.al)
	}
	for _, c := range s.comps {
		bits := &w.coefBits[c]
		if s.ss > 0 && bits[0] < 0 {
			return fmt.Errorf("%w: AC scan before the DC scan of its component", errCorrupt)
		}
		for k := s.ss; k <= s.se; k++ {
			if bits[k] >= 0 && s.ah == 0 || s.ah != max(int(bits[k]), 0) {
				return fmt.Errorf("%w: scan refines coefficient %d out of order (Ah=%d Al=%d)", errCorrupt, k, s.ah, s.al)
			}
			bits[k] = int8(s.al)
		}
	}
	return nil
}

// mcus is the number of MCUs in a scan of the given components: blocks of
// the one component of a non-interleaved scan, else MCUs of the frame.
func (w *jpegWalker) mcus(comps []int) int {
	f := w.frame
	hmax, vmax := f.maxSampling()
	if len(comps) == 1 {
		bw, bh := f.blocks(comps[0])
		return bw * bh
	}
	return ((f.width + 8*hmax - 1) / (8 * hmax)) * ((f.height + 8*vmax - 1) / (8 * vmax))
}

// maxSampling returns the largest horizontal and vertical sampling factors.
func (f jpegFrame) maxSampling() (int, int) {
	hmax, vmax := 1, 1
	for _, c := range f.comps {
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	return hmax, vmax
}

// blocks returns how many 8x8 blocks across and down component c covers.
func (f jpegFrame) blocks(c int) (int, int) {
	hmax, vmax := f.maxSampling()
	comp := f.comps[c]
	cw := (f.width*comp.h + hmax - 1) / hmax
	ch := (f.height*comp.v + vmax - 1) / vmax
	return (cw + 7) / 8, (ch + 7) / 8
}

// entropyData walks a scan's coded data without decoding it: stuffed
// 0xFF00 bytes, restart markers in order and exactly as many as the
// restart interval calls for, up to the marker that ends the scan, which
// it returns.
func (w *jpegWalker) entropyData(mcus int) (byte, error) {
	want := 0
	if w.interval > 0 {
		want = (mcus+w.interval-1)/w.interval - 1
	}
	restarts, data := 0, false
	for {
		chunk, err := w.r.ReadSlice(0xFF)
		if errors.Is(err, bufio.ErrBufferFull) {
			data = true
			continue
		}
		if err != nil {
			return 0, truncated(err)
		}
		data = data || len(chunk) > 1
		b, err := w.r.ReadByte()
		for err == nil && b == 0xFF {
			b, err = w.r.ReadByte()
		}
		if err != nil {
			return 0, truncated(err)
		}
		switch {
		case b == 0:
			data = true
		case b >= markerRST0 && b <= markerRST7:
			if !data || b != byte(markerRST0+restarts%8) || restarts >= want {
				w.odd("restart markers out of order or out of place")
			}
			restarts++
			data = false
		default:
			if !data {
				w.odd("a scan with no data")
			}
			if restarts != want {
				w.odd("%d restart markers where the restart interval calls for %d", restarts, want)
			}
			return b, nil
		}
	}
}

// end checks, at the end-of-image marker, that the image is complete and
// that only padding follows.
func (w *jpegWalker) end() error {
	if w.frame == nil || w.scans == 0 {
		return errors.New("no image data before its end-of-image marker")
	}
	for c := range w.coefBits {
		for k, bits := range w.coefBits[c] {
			if bits != 0 {
				w.odd("incomplete progression (coefficient %d of component %d)", k, c)
			}
		}
	}
	if len(w.frame.comps) == 3 && w.adobe != -1 && w.adobe != 1 {
		w.odd("Adobe colour transform %d (not YCbCr)", w.adobe)
	}
	if w.notPlain != nil {
		return nil // what follows the image can make it no less plain
	}
	for {
		b, err := w.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if b != 0 && b != 0xFF {
			w.odd("data after its end-of-image marker")
			return nil
		}
	}
}
