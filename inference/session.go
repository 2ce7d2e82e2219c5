package inference

import (
	"fmt"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// session is one ONNX Runtime session. DynamicAdvancedSession takes its
// tensors per Run, and ONNX Runtime allows concurrent Run calls on one
// session, so one session serves every worker.
type session struct {
	s *ort.DynamicAdvancedSession
}

// SessionOptions returns the options every session of the engine starts
// from: intra-op threads (0: ONNX Runtime's default, one per core) that
// sleep when they run out of work instead of spinning. ONNX Runtime's
// threads spin by default, waiting for the next operator's work, and the
// interpolation models are many small operators: spinning burned a third of
// flow2's CPU time at 960 px without making it faster (bench/interp), and
// it takes the cores from ffmpeg and the image decoders of the same job.
// The benchmarks' bare sessions use it too, so they differ from the
// engine's only in what they measure. The caller destroys them.
func SessionOptions(threads int) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("creating session options: %w", err)
	}
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("setting %d intra-op threads: %w", threads, err)
		}
	}
	if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
		opts.Destroy()
		return nil, fmt.Errorf("turning off the intra-op threads' spinning: %w", err)
	}
	return opts, nil
}

// newSession creates a session for the model bytes with SessionOptions on
// the CPU or, with cuda, the CUDA provider.
func newSession(model []byte, inputs, outputs []string, threads int, cuda bool) (*session, error) {
	opts, err := SessionOptions(threads)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if cuda {
		if err := appendCUDA(opts); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the session: %w", err)
	}
	return &session{s: s}, nil
}

// appendCUDA adds the CUDA provider on device 0. cuDNN's exhaustive
// convolution search is turned off: it costs seconds per new input shape,
// and tiles keep the shapes few but frames of new sizes would pay it again.
func appendCUDA(opts *ort.SessionOptions) error {
	cu, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("creating CUDA provider options: %w", err)
	}
	defer cu.Destroy()
	if err := cu.Update(map[string]string{"device_id": "0", "cudnn_conv_algo_search": "HEURISTIC"}); err != nil {
		return fmt.Errorf("setting CUDA provider options: %w", err)
	}
	if err := opts.AppendExecutionProviderCUDA(cu); err != nil {
		return fmt.Errorf("adding the CUDA provider: %w", err)
	}
	return nil
}

func (s *session) close() error { return s.s.Destroy() }

// run runs the session on float32 tensors over the given buffers; the
// output buffer's shape must be the one the model produces.
func (s *session) run(ins []ort.Value, outShape ort.Shape, out []float32) error {
	o, err := ort.NewTensor(outShape, out)
	if err != nil {
		return fmt.Errorf("creating the output tensor %v: %w", outShape, err)
	}
	defer o.Destroy()
	if err := s.s.Run(ins, []ort.Value{o}); err != nil {
		return fmt.Errorf("running the model: %w", err)
	}
	return nil
}

// identityModel returns an ONNX model with one Identity node from float32
// x to y of the given shape, a negative side being free, written out field
// by field with protowire so the CUDA probe needs no file.
func identityModel(shape ...int64) []byte {
	// ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim...}}}}
	value := func(name string) []byte {
		var dims []byte
		for i, d := range shape {
			if d < 0 {
				dims = append(dims, pbBytes(1, pbString(2, fmt.Sprintf("d%d", i)))...) // dim_param
			} else {
				dims = append(dims, pbBytes(1, pbVarint(1, uint64(d)))...) // dim_value
			}
		}
		return slices.Concat(pbString(1, name), pbBytes(2, pbBytes(1, pbVarint(1, 1), pbBytes(2, dims))))
	}
	node := slices.Concat(pbString(1, "x"), pbString(2, "y"), pbString(3, "identity"), pbString(4, "Identity"))
	graph := slices.Concat(pbBytes(1, node), pbString(2, "identity"), pbBytes(11, value("x")), pbBytes(12, value("y")))
	opset := slices.Concat(pbString(1, ""), pbVarint(2, 13))
	return slices.Concat(pbVarint(1, 8), pbBytes(8, opset), pbBytes(7, graph))
}

// pbBytes encodes a length-delimited protobuf field holding body's parts.
func pbBytes(field protowire.Number, body ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), slices.Concat(body...))
}

// pbString encodes a protobuf string field.
func pbString(field protowire.Number, s string) []byte { return pbBytes(field, []byte(s)) }

// pbVarint encodes a protobuf varint field.
func pbVarint(field protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, field, protowire.VarintType), v)
}

// runAlloc runs the session with ONNX Runtime allocating the output, for
// outputs whose shape is known only after the run, and returns a copy of
// its values and its shape.
func (s *session) runAlloc(ins []ort.Value) ([]float32, ort.Shape, error) {
	outs := []ort.Value{nil}
	if err := s.s.Run(ins, outs); err != nil {
		return nil, nil, fmt.Errorf("running the model: %w", err)
	}
	defer outs[0].Destroy()
	t, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, fmt.Errorf("the model's output is a %T, want a float32 tensor", outs[0])
	}
	return slices.Clone(t.GetData()), t.GetShape(), nil
}
