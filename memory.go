package img2vid

import "slices"

// Memory is a job's estimated peak memory, by where it goes. The figures
// are bytes per pixel measured on the real pipeline (bench/memory keeps
// them honest), rounded up; none depends on the machine's core count.
type Memory struct {
	// ReadAhead bounds the images decoded, run through the frame model and
	// placed ahead of the encoder, in bytes: the pipeline starts another
	// image only while the ones in flight fit. It is at least one image in
	// flight and one waiting, so the job can always move.
	ReadAhead int64
	// PerImage is one image in flight: decoded, converted, through the
	// frame model and placed on the canvas. PerFrame is one frame waiting
	// for the encoder (for whole files, the largest file).
	PerImage, PerFrame int64
	// Held is the two frames the encoding loop holds outside the
	// read-ahead: the one being written and the one before it; with
	// transitions, also the frame they are drawn into.
	Held int64
	// Interpolation is the model's tensors and working memory, and the one
	// in-between frame that exists at a time.
	Interpolation int64
	// Detection is a detect model's share: a frame to draw on and the
	// model's input and working memory.
	Detection int64
	// Encoder is the frame buffer on our side of the pipe and the ffmpeg
	// process (x264 holds its look-ahead; its threads are capped, so this
	// does not grow with the core count).
	Encoder int64
	// Base is the process itself: the Go runtime, the inference library
	// and loaded models.
	Base int64
	// Peak is the sum: what the job is refused for above max_memory_mb.
	Peak int64
}

// Bytes per pixel of each kind of buffer, and fixed costs.
const (
	// An NRGBA image; a decoder's own buffer is at most as large again.
	bytesNRGBA = 4
	// A float32 RGB tensor.
	bytesTensor = 12
	// x264 with its look-ahead and up to video.EncoderThreads threads,
	// measured at 1 to 16 megapixels (76 bytes at one thread, 106 at four;
	// ffmpeg peaked at 548 MiB on 2112x2112 frames).
	bytesEncoder = 110
	// ffmpeg's own fixed cost, and the process's.
	encoderBase = 64 << 20
	processBase = 160 << 20
	// detectorBase is a detect model's input and working memory: its
	// input is a fixed size (640x640 for YOLOX), whatever the frame's.
	detectorBase = 128 << 20
	// minReadAhead is the read-ahead every job may use, so that small
	// frames decode on several cores at once.
	minReadAhead = 256 << 20
)

// interpWorkTable is each interpolation model's working memory per frame pixel
// beyond its inputs and output (pyramids, warps, motion fields, and what
// ONNX Runtime's arena keeps of the frame model run before it), in bytes,
// by model name: the one place a model's figure is set. Each is measured
// on the real pipeline, running 2 images of 1056x1056 through a 2x frame
// model into frames of 2112x2112 and interpolating them (img2vid convert,
// peak RSS of the process), and set so that the plan covers the highest
// peak seen with a margin; at the largest frames the default ceiling
// allows, bench/memory checks that the whole estimate holds.
var interpWorkTable = map[string]int64{
	// The compact two-graph models (2026-12-08), bench/memory -side 1056
	// (2 images through a 2x frame model into 2112x2112 frames,
	// interpolate 16), img2vid and its ffmpeg at GOMAXPROCS 1 and 16:
	// flow 1695 and 1925 MiB, flow2 1873 and 2104, flow3 2037 and 2268.
	// The synthesis warps the two frames in GridSamples of their own and
	// keeps the motion beside them, more than the single graphs held
	// (flow2 peaked at 1667 and 1737 MiB); each figure covers its peak
	// with 6 to 9 % to spare: plans of 2100, 2228 and 2398 MiB.
	"flow":  220,
	"flow2": 250,
	"flow3": 290,
	// The cross-fade has next to no working memory of its own; what its
	// figure covers is the runtime's and the process's. Peaked at 1078 MiB
	// (interpolate 4); the plan says 1398 MiB for the process. Without a
	// frame model, at 2048x2048 and interpolate 16, the server and its
	// ffmpeg peaked at 1257 to 1307 MiB (TestServeHoldsEveryLimit), where
	// the plan says 1844 MiB.
	"blend": 180,
}

// DefaultInterpWork is the working memory per frame pixel assumed for an
// interpolation model the table does not list (a user's model): the
// largest figure measured among the built-in models.
const DefaultInterpWork = 290

// interpWork is the named model's working memory per frame pixel.
func interpWork(model string) int64 {
	if w, ok := interpWorkTable[model]; ok {
		return w
	}
	return DefaultInterpWork
}

// estimateMemory fills in a plan's memory.
func estimateMemory(p Plan, images []Image) Memory {
	var m Memory
	fp := p.FramePixels
	if p.PassThrough {
		for _, im := range images {
			m.PerFrame = max(m.PerFrame, im.Bytes)
		}
		m.PerImage = m.PerFrame
	} else {
		// Decoded (the decoder's buffers and the NRGBA copy, as the
		// header bounds them), through the frame model (its output and the
		// float tensors of its tiles, folded into an output-sized float
		// image), placed on the canvas.
		var decode int64
		for _, im := range images {
			d := im.DecodeBytes
			if d == 0 {
				d = 2 * bytesNRGBA * im.Pixels()
			}
			decode = max(decode, d)
		}
		m.PerImage = decode + bytesNRGBA*fp
		if p.ModelPixels > 0 {
			m.PerImage += (bytesNRGBA + bytesTensor) * p.ModelPixels
		}
		m.PerFrame = bytesNRGBA * fp
	}
	m.ReadAhead = max(minReadAhead, m.PerImage+m.PerFrame)
	m.Held = 2 * bytesNRGBA * fp
	if p.Options.HasTransition() {
		m.Held += bytesNRGBA * fp // the frame a transition is drawn into
	}
	if slices.ContainsFunc(images, func(im Image) bool { return im.Caption != "" }) {
		m.Held += bytesNRGBA * fp // the frame a caption is drawn on, apart from the image's own
	}
	if p.Options.Moves() {
		m.Held += 2 * bytesNRGBA * fp // Ken Burns renders: the image's, and the next one's in a transition
	}
	if p.Options.Interpolates() {
		// Both frames as tensors, the output tensor, the model's working
		// memory, and one in-between frame.
		m.Interpolation = 3*bytesTensor*fp + interpWork(p.Options.InterpModel)*fp + bytesNRGBA*fp
	}
	if p.Options.DetectModel != "" {
		// A copy of each frame to draw on, and the detector's letterboxed
		// input, which is far smaller than a frame.
		m.Detection = bytesNRGBA*fp + detectorBase
	}
	m.Encoder = 3*fp + encoderBase + bytesEncoder*fp
	m.Base = processBase
	m.Peak = m.ReadAhead + m.Held + m.Interpolation + m.Detection + m.Encoder + m.Base
	return m
}
