package inference

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto's messages that modelIO reads.
const (
	modelGraph       = 7  // ModelProto.graph
	graphInitializer = 5  // GraphProto.initializer
	graphInput       = 11 // GraphProto.input
	graphOutput      = 12 // GraphProto.output
	graphSparseInit  = 15 // GraphProto.sparse_initializer
	tensorName       = 8  // TensorProto.name
	sparseValues     = 1  // SparseTensorProto.values
	valueName        = 1  // ValueInfoProto.name
	valueType        = 2  // ValueInfoProto.type
	typeTensor       = 1  // TypeProto.tensor_type
	typeSequence     = 4  // TypeProto.sequence_type
	typeMap          = 5  // TypeProto.map_type
	typeOpaque       = 7  // TypeProto.opaque_type
	typeSparseTensor = 8  // TypeProto.sparse_tensor_type
	typeOptional     = 9  // TypeProto.optional_type
	tensorTypeElem   = 1  // TypeProto.Tensor.elem_type
	tensorTypeShape  = 2  // TypeProto.Tensor.shape
	shapeDim         = 1  // TensorShapeProto.dim
	dimValue         = 1  // TensorShapeProto.Dimension.dim_value
)

// errMalformed says the bytes are not a protobuf message at all.
var errMalformed = errors.New("not an ONNX model (malformed protobuf)")

// modelIO reads a model's inputs and outputs (names, kinds, element types
// and shapes, a free side being -1) as ONNX Runtime reports them: the
// graph's inputs less its initializers, and its outputs.
//
// It reads them from the model's bytes rather than from a session because
// a session costs what the whole graph costs: ONNX Runtime's memory
// planner takes time that grows with the square of the node count, 13 s
// for flow2's 17,000 nodes on 2 cores (20 times flow's 4,400), and serve
// and doctor check every model when they start. The session comes when a
// job first uses the model, and its errors then say what ONNX Runtime
// could not load.
func modelIO(model []byte) (ins, outs []ort.InputOutputInfo, err error) {
	graph, ok, err := field(model, modelGraph)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errors.New("not an ONNX model: it has no graph")
	}
	initializers := map[string]bool{}
	var inputs [][]byte
	err = eachField(graph, func(num protowire.Number, b []byte) error {
		switch num {
		case graphInitializer, graphSparseInit:
			t := b
			if num == graphSparseInit {
				if t, _, err = field(b, sparseValues); err != nil {
					return err
				}
			}
			name, _, err := field(t, tensorName)
			if err != nil {
				return err
			}
			initializers[string(name)] = true
		case graphInput:
			inputs = append(inputs, b)
		case graphOutput:
			info, err := valueInfo(b)
			if err != nil {
				return fmt.Errorf("output %d: %w", len(outs), err)
			}
			outs = append(outs, info)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, b := range inputs {
		info, err := valueInfo(b)
		if err != nil {
			return nil, nil, fmt.Errorf("input %d: %w", i, err)
		}
		if !initializers[info.Name] {
			ins = append(ins, info)
		}
	}
	return ins, outs, nil
}

// valueInfo reads one ValueInfoProto.
func valueInfo(b []byte) (ort.InputOutputInfo, error) {
	var info ort.InputOutputInfo
	name, _, err := field(b, valueName)
	if err != nil {
		return info, err
	}
	info.Name = string(name)
	typ, ok, err := field(b, valueType)
	if err != nil || !ok {
		return info, err // no type: ONNXTypeUnknown, as ONNX Runtime says
	}
	return info, eachField(typ, func(num protowire.Number, b []byte) error {
		switch num {
		case typeTensor:
			info.OrtValueType = ort.ONNXTypeTensor
			return tensorType(b, &info)
		case typeSparseTensor:
			info.OrtValueType = ort.ONNXTypeSparseTensor
		case typeSequence:
			info.OrtValueType = ort.ONNXTypeSequence
		case typeMap:
			info.OrtValueType = ort.ONNXTypeMap
		case typeOpaque:
			info.OrtValueType = ort.ONNXTypeOpaque
		case typeOptional:
			info.OrtValueType = ort.ONNXTypeOptional
		}
		return nil
	})
}

// tensorType reads a TypeProto.Tensor: the element type, and the shape with
// -1 for a side given by name or not at all. ONNX's element type numbers
// are ONNX Runtime's.
func tensorType(b []byte, info *ort.InputOutputInfo) error {
	elem, _, err := varintField(b, tensorTypeElem)
	if err != nil {
		return err
	}
	info.DataType = ort.TensorElementDataType(elem)
	shape, ok, err := field(b, tensorTypeShape)
	if err != nil || !ok {
		return err // no shape: rank unknown, no sides
	}
	info.Dimensions = ort.Shape{}
	return eachField(shape, func(num protowire.Number, dim []byte) error {
		if num != shapeDim {
			return nil
		}
		side := int64(-1)
		if v, ok, err := varintField(dim, dimValue); err != nil {
			return err
		} else if ok {
			side = int64(v)
		}
		info.Dimensions = append(info.Dimensions, side)
		return nil
	})
}

// eachField calls fn with the number and bytes of every length-delimited
// field of the message b, skipping the others.
func eachField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// field returns the last length-delimited field numbered num of the
// message b (protobuf's rule for a repeated singular field) and whether
// there is one.
func field(b []byte, num protowire.Number) (v []byte, ok bool, err error) {
	err = eachField(b, func(n protowire.Number, f []byte) error {
		if n == num {
			v, ok = f, true
		}
		return nil
	})
	return v, ok, err
}

// varintField returns the last varint field numbered num of the message b.
func varintField(b []byte, num protowire.Number) (v uint64, ok bool, err error) {
	for len(b) > 0 {
		n, typ, m := protowire.ConsumeTag(b)
		if m < 0 {
			return 0, false, errMalformed
		}
		b = b[m:]
		if n == num && typ == protowire.VarintType {
			if v, m = protowire.ConsumeVarint(b); m < 0 {
				return 0, false, errMalformed
			}
			ok = true
		} else if m = protowire.ConsumeFieldValue(n, typ, b); m < 0 {
			return 0, false, errMalformed
		}
		b = b[m:]
	}
	return v, ok, nil
}
