package ingest

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// huffTable is a canonical Huffman code as a JPEG DHT segment defines it
// (ITU T.81, annex C), decoded one bit at a time (F.2.2.3).
type huffTable struct {
	maxCode [18]int32 // the largest code of each length; -1 when there is none
	valPtr  [17]int32 // index in vals of the first symbol of each length
	minCode [17]int32 // the smallest code of each length
	vals    []byte
	// lut maps the next 8 bits to a symbol and its code length (the high
	// byte; 0 when the code is longer than 8 bits).
	lut [256]uint16
	bad error // why libjpeg refuses the table; nil when it does not
}

// newHuffTable builds a table from the 16 counts of codes of each length
// and the symbols. Like libjpeg, it refuses counts whose codes do not fit
// in their lengths.
func newHuffTable(counts, vals []byte) (*huffTable, error) {
	t := &huffTable{vals: vals}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valPtr[l], t.minCode[l] = k, code
		if code+n >= 1<<l && n > 0 {
			return nil, errors.New("Huffman table with more codes than fit")
		}
		if n == 0 {
			t.maxCode[l] = -1
		} else {
			t.maxCode[l] = code + n - 1
			if l <= 8 {
				for c := code; c < code+n; c++ {
					sym := uint16(vals[k+c-code])
					for fill := range int32(1) << (8 - l) {
						t.lut[c<<(8-l)|fill] = uint16(l)<<8 | sym
					}
				}
			}
		}
		code += n
		k += n
		code <<= 1
	}
	t.maxCode[17] = 1 << 30 // a sentinel no code reaches
	return t, nil
}

// bitReader reads the bits of a scan's entropy-coded data, undoing byte
// stuffing, and stops at the first marker.
type bitReader struct {
	r      io.ByteReader
	acc    uint32 // bits not yet used, at the low end
	n      uint   // how many
	marker byte   // the marker that ended the data; 0 until one is met
	err    error
	// steps are the quantisation steps of the block being read, energy
	// the sum of its dequantised coefficients' squares so far.
	steps  *[64]uint16
	energy *float32
}

// magnitude returns the size of the coefficient coded as the s bits v
// (F.2.2.1's EXTEND), shifted left by al.
func magnitude(v uint32, s uint, al int) int {
	if s == 0 {
		return 0
	}
	if v < 1<<(s-1) {
		v = 1<<s - 1 - v
	}
	return int(v) << al
}

// check adds a coefficient of magnitude mag at zigzag index k to the
// block's energy.
func (b *bitReader) check(k, mag int) {
	e := float32(mag) * float32(b.steps[k])
	*b.energy += e * e
}

// maxEnergy bounds the energy of a block of 8-bit samples coded with
// quantisation steps q. The DCT keeps energy (Parseval): samples within
// ±128 give at most 64*128² = 1024², and quantising moves each coefficient
// by less than its step (half of it when rounding; trellis quantisers
// may choose the next level). A block above it is no picture, and
// decoders turn it into different pixels: ffmpeg's 16-bit transform
// wraps, libjpeg's range limit wraps at other points, Go's clamps.
func maxEnergy(q *[64]uint16) float32 {
	var sq float64
	for _, v := range q {
		sq += float64(v) * float64(v)
	}
	b := 1024 + math.Sqrt(sq)
	return float32(b * b)
}

// fill adds a byte to acc, or notes the marker or the error that ends the
// data; it reports whether a byte was added.
func (b *bitReader) fill() bool {
	if b.marker != 0 || b.err != nil {
		return false
	}
	c, err := b.r.ReadByte()
	if err != nil {
		b.err = truncated(err)
		return false
	}
	if c == 0xFF {
		m, err := b.r.ReadByte()
		for err == nil && m == 0xFF {
			m, err = b.r.ReadByte()
		}
		if err != nil {
			b.err = truncated(err)
			return false
		}
		if m != 0 {
			b.marker = m
			return false
		}
	}
	b.acc = b.acc<<8 | uint32(c)
	b.n += 8
	return true
}

// bits returns the next n (at most 16) bits.
func (b *bitReader) bits(n uint) (uint32, error) {
	for b.n < n {
		if !b.fill() {
			return 0, b.short()
		}
	}
	b.n -= n
	return b.acc >> b.n & (1<<n - 1), nil
}

func (b *bitReader) short() error {
	if b.err != nil {
		return b.err
	}
	return fmt.Errorf("%w: the scan data ends early", errCorrupt)
}

// decode returns the next symbol of t.
func (b *bitReader) decode(t *huffTable) (byte, error) {
	if b.n < 8 {
		b.fill() // the short path below handles the end of the data
	}
	if b.n >= 8 {
		if e := t.lut[b.acc>>(b.n-8)&0xFF]; e != 0 {
			b.n -= uint(e >> 8)
			return byte(e), nil
		}
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		bit, err := b.bits(1)
		if err != nil {
			return 0, err
		}
		code = code<<1 | int32(bit)
		if code <= t.maxCode[l] {
			return t.vals[t.valPtr[l]+code-t.minCode[l]], nil
		}
	}
	return 0, fmt.Errorf("%w: a code no Huffman table holds", errCorrupt)
}

// end finishes an interval or a scan: the bits left in the last byte are
// padding; whole bytes of data before the next marker are damage (the
// blocks ended before the data did). It returns the marker.
func (b *bitReader) end() (byte, error) {
	extra := int(b.n / 8) // whole bytes read ahead and not used, as libjpeg counts them
	b.acc, b.n = 0, 0
	for b.fill() {
		extra++
		b.n = 0
	}
	if b.err != nil {
		return 0, b.err
	}
	if extra > 0 {
		return 0, fmt.Errorf("%w: %d bytes of scan data after its last block", errCorrupt, extra)
	}
	m := b.marker
	b.marker = 0
	return m, nil
}

// decodeScan decodes the Huffman-coded data of scan s, block by block, to
// check it, and returns the marker after it.
func (w *jpegWalker) decodeScan(s jpegScan) (byte, error) {
	f := w.frame
	br := &bitReader{r: w.r}
	hmax, vmax := f.maxSampling()
	mcusX, mcusY := (f.width+8*hmax-1)/(8*hmax), (f.height+8*vmax-1)/(8*vmax)
	type unit struct{ comp, td, ta, x, y int } // one block of an MCU
	var units []unit
	var mcus int
	if len(s.comps) == 1 {
		bw, bh := f.blocks(s.comps[0])
		mcus = bw * bh
	} else {
		mcus = mcusX * mcusY
	}
	acScan := f.marker == markerSOF2 && s.ss > 0
	if acScan && w.nonzero == nil {
		w.nonzero = make([][]uint64, len(f.comps))
	}
	stride := make([]int, len(f.comps))
	if w.energy == nil {
		w.energy = make([][]float32, len(f.comps))
	}
	limits := make([]float32, len(f.comps))
	for i, c := range f.comps {
		stride[i] = mcusX * c.h
		if acScan && w.nonzero[i] == nil {
			w.nonzero[i] = make([]uint64, stride[i]*mcusY*c.v)
		}
		if w.energy[i] == nil {
			w.energy[i] = make([]float32, stride[i]*mcusY*c.v)
		}
		limits[i] = maxEnergy(&w.steps[c.tq])
	}
	wide := false
	eobrun := 0
	pred := make([]int, len(f.comps)) // DC predictions
	for m := range mcus {
		if w.interval > 0 && m > 0 && m%w.interval == 0 {
			marker, err := br.end()
			if err != nil {
				return 0, err
			}
			if want := byte(markerRST0 + (m/w.interval-1)%8); marker != want {
				return 0, fmt.Errorf("%w: marker 0x%02X where restart marker 0x%02X belongs", errCorrupt, marker, want)
			}
			eobrun = 0
			clear(pred)
		}
		units = units[:0]
		if len(s.comps) == 1 {
			bw, _ := f.blocks(s.comps[0])
			units = append(units, unit{s.comps[0], s.td[0], s.ta[0], m % bw, m / bw})
		} else {
			mx, my := m%mcusX, m/mcusX
			for i, c := range s.comps {
				for by := range f.comps[c].v {
					for bx := range f.comps[c].h {
						units = append(units, unit{c, s.td[i], s.ta[i], mx*f.comps[c].h + bx, my*f.comps[c].v + by})
					}
				}
			}
		}
		for _, u := range units {
			br.steps = &w.steps[f.comps[u.comp].tq]
			br.energy = &w.energy[u.comp][u.y*stride[u.comp]+u.x]
			var err error
			switch {
			case f.marker != markerSOF2:
				err = br.sequentialBlock(w.dc[u.td], w.ac[u.ta], &pred[u.comp])
			case s.ss == 0 && s.ah == 0:
				err = br.dcFirst(w.dc[u.td], &pred[u.comp], s.al)
			case s.ss == 0:
				_, err = br.bits(1)
			case s.ah == 0:
				err = br.acFirst(w.ac[u.ta], s.ss, s.se, s.al, &eobrun, &w.nonzero[u.comp][u.y*stride[u.comp]+u.x])
			default:
				err = br.acRefine(w.ac[u.ta], s.ss, s.se, &eobrun, &w.nonzero[u.comp][u.y*stride[u.comp]+u.x])
			}
			if err != nil {
				return 0, err
			}
			wide = wide || *br.energy > limits[u.comp]
		}
	}
	if wide {
		return 0, fmt.Errorf("%w: a block no 8-bit picture makes (its coefficients hold too much energy)", errCorrupt)
	}
	marker, err := br.end()
	for err == nil && marker >= markerRST0 && marker <= markerRST7 {
		// A restart marker after the last interval: decoders skip it.
		w.odd("restart marker after the last block")
		marker, err = br.end()
	}
	return marker, err
}

// dcValue reads a DC difference's category and its bits, adds it to the
// component's prediction pred and checks the DC coefficient it makes,
// shifted left by al.
func (b *bitReader) dcValue(dc *huffTable, pred *int, al int) error {
	s, err := b.decode(dc)
	if err != nil {
		return err
	}
	if s > 11 {
		return fmt.Errorf("%w: a DC difference of %d bits in 8-bit samples", errCorrupt, s)
	}
	v, err := b.bits(uint(s))
	if err != nil {
		return err
	}
	d := magnitude(v, uint(s), 0)
	if s > 0 && v < 1<<(s-1) {
		d = -d
	}
	*pred += d
	b.check(0, max(*pred, -*pred)<<al)
	return nil
}

// sequentialBlock reads one block of a sequential scan (F.2.2).
func (b *bitReader) sequentialBlock(dc, ac *huffTable, pred *int) error {
	if err := b.dcValue(dc, pred, 0); err != nil {
		return err
	}
	for k := 1; k < 64; {
		rs, err := b.decode(ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				return nil // end of block
			}
			k += 16
			continue
		}
		if k += r; k > 63 {
			return tooManyCoefficients()
		}
		v, err := b.bits(s)
		if err != nil {
			return err
		}
		b.check(k, magnitude(v, s, 0))
		k++
	}
	return nil
}

func tooManyCoefficients() error {
	return fmt.Errorf("%w: a block of more than 64 coefficients", errCorrupt)
}

// dcFirst reads a block's DC coefficient in the first DC scan of a
// progressive image (G.1.2.1).
func (b *bitReader) dcFirst(dc *huffTable, pred *int, al int) error { return b.dcValue(dc, pred, al) }

// acFirst reads a block's band in a first AC scan (G.1.2.2), noting which
// coefficients become nonzero.
func (b *bitReader) acFirst(ac *huffTable, ss, se, al int, eobrun *int, nz *uint64) error {
	if *eobrun > 0 {
		*eobrun--
		return nil
	}
	for k := ss; k <= se; {
		rs, err := b.decode(ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				*eobrun = 1<<r - 1
				if r > 0 {
					v, err := b.bits(uint(r))
					if err != nil {
						return err
					}
					*eobrun += int(v)
				}
				return nil
			}
			k += 16
			continue
		}
		if k += r; k > se {
			return tooManyCoefficients()
		}
		v, err := b.bits(s)
		if err != nil {
			return err
		}
		b.check(k, magnitude(v, s, al))
		*nz |= 1 << k
		k++
	}
	return nil
}

// acRefine reads a block's band in an AC refinement scan (G.1.2.3): one
// correction bit for every coefficient already nonzero, and new ones of
// magnitude 1.
func (b *bitReader) acRefine(ac *huffTable, ss, se int, eobrun *int, nz *uint64) error {
	k := ss
	if *eobrun == 0 {
		for ; k <= se; k++ {
			rs, err := b.decode(ac)
			if err != nil {
				return err
			}
			r, s := int(rs>>4), rs&15
			if s != 0 {
				if s != 1 {
					return fmt.Errorf("%w: a refinement of magnitude %d", errCorrupt, s)
				}
				if _, err := b.bits(1); err != nil {
					return err
				}
			} else if r != 15 {
				*eobrun = 1 << r
				if r > 0 {
					v, err := b.bits(uint(r))
					if err != nil {
						return err
					}
					*eobrun += int(v)
				}
				break
			}
			for ; k <= se; k++ {
				if *nz&(1<<k) != 0 {
					if _, err := b.bits(1); err != nil {
						return err
					}
				} else if r--; r < 0 {
					break
				}
			}
			if s != 0 {
				if k > se {
					return tooManyCoefficients()
				}
				*nz |= 1 << k
			}
		}
	}
	if *eobrun > 0 {
		for ; k <= se; k++ {
			if *nz&(1<<k) != 0 {
				if _, err := b.bits(1); err != nil {
					return err
				}
			}
		}
		*eobrun--
	}
	return nil
}
