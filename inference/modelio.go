package inference

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto's messages that modelIO and ReadGraphInfo
// read.
const (
	modelGraph       = 7  // ModelProto.graph
	graphNode        = 1  // GraphProto.node
	nodeOpType       = 4  // NodeProto.op_type
	nodeAttribute    = 5  // NodeProto.attribute
	nodeDomain       = 7  // NodeProto.domain
	attrGraph        = 6  // AttributeProto.g
	attrGraphs       = 11 // AttributeProto.graphs
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
	dimParam         = 2  // TensorShapeProto.Dimension.dim_param
)

// errMalformed says the bytes are not a protobuf message at all.
var errMalformed = errors.New("not an ONNX model (malformed protobuf)")

// modelIO reads a model's inputs and outputs (names, kinds, element types
// and shapes, a free side being -1) as ONNX Runtime reports them: the
// graph's inputs less its initializers, and its outputs.
//
// It reads them from the model's bytes rather than from a session because
// a session costs what the whole graph costs: ONNX Runtime's memory
// planner takes time that grows with the square of the node count (13 s
// on 2 cores for a graph of 16,900 nodes, the size flow2 once had), and
// serve and doctor check every model, the user's too, when they start. The session comes when a
// job first uses the model, and its errors then say what ONNX Runtime
// could not load.
//
// The bytes are read by protobuf's rules, as ONNX Runtime's parser reads
// them: a message field given more than once is the merge of all of them,
// a scalar or string field is its last value, and of the members of a
// oneof the last one given is the one set.
func modelIO(model []byte) (ins, outs []ort.InputOutputInfo, err error) {
	graph, ok, err := message(model, modelGraph)
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
			tensor := b
			if num == graphSparseInit {
				values, _, err := message(b, sparseValues)
				if err != nil {
					return err
				}
				tensor = values
			}
			name, err := lastBytes(tensor, tensorName)
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

// valueTypes maps TypeProto's value oneof to ONNX Runtime's kinds.
var valueTypes = map[protowire.Number]ort.ONNXType{
	typeTensor:       ort.ONNXTypeTensor,
	typeSparseTensor: ort.ONNXTypeSparseTensor,
	typeSequence:     ort.ONNXTypeSequence,
	typeMap:          ort.ONNXTypeMap,
	typeOpaque:       ort.ONNXTypeOpaque,
	typeOptional:     ort.ONNXTypeOptional,
}

// Wire types of the members of TypeProto's value oneof (all messages) and
// of TensorShapeProto.Dimension's (a number or a name).
var (
	valueOneof = func() map[protowire.Number]protowire.Type {
		m := map[protowire.Number]protowire.Type{}
		for n := range valueTypes {
			m[n] = protowire.BytesType
		}
		return m
	}()
	dimOneof = map[protowire.Number]protowire.Type{dimValue: protowire.VarintType, dimParam: protowire.BytesType}
)

// valueInfo reads one ValueInfoProto. With no type it is ONNXTypeUnknown,
// as ONNX Runtime says; only a dense tensor has an element type and shape.
func valueInfo(b []byte) (ort.InputOutputInfo, error) {
	var info ort.InputOutputInfo
	name, err := lastBytes(b, valueName)
	if err != nil {
		return info, err
	}
	info.Name = string(name)
	typ, _, err := message(b, valueType)
	if err != nil {
		return info, err
	}
	kind, err := lastOf(typ, valueOneof)
	if err != nil || kind == 0 {
		return info, err
	}
	info.OrtValueType = valueTypes[kind]
	if kind != typeTensor {
		return info, nil
	}
	tensor, _, err := message(typ, typeTensor)
	if err != nil {
		return info, err
	}
	return info, tensorType(tensor, &info)
}

// tensorType reads a TypeProto.Tensor: the element type, and the shape with
// -1 for a side given by name or not at all. ONNX's element type numbers
// are ONNX Runtime's.
func tensorType(b []byte, info *ort.InputOutputInfo) error {
	elem, err := lastVarint(b, tensorTypeElem)
	if err != nil {
		return err
	}
	info.DataType = ort.TensorElementDataType(elem)
	shape, ok, err := message(b, tensorTypeShape)
	if err != nil || !ok {
		return err // no shape: rank unknown, no sides
	}
	info.Dimensions = ort.Shape{}
	return eachField(shape, func(num protowire.Number, dim []byte) error {
		if num != shapeDim {
			return nil
		}
		side := int64(-1)
		set, err := lastOf(dim, dimOneof)
		if err != nil {
			return err
		}
		if set == dimValue {
			v, err := lastVarint(dim, dimValue)
			if err != nil {
				return err
			}
			side = int64(v)
		}
		info.Dimensions = append(info.Dimensions, side)
		return nil
	})
}

// eachRaw calls fn with the number, wire type and value bytes of every
// field of the message b, in order.
func eachRaw(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return errMalformed
		}
		if err := fn(num, typ, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// eachField calls fn with the number and contents of every length-delimited
// field of the message b, in order, skipping the others.
func eachField(b []byte, fn func(protowire.Number, []byte) error) error {
	return eachRaw(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		body, _ := protowire.ConsumeBytes(v) // eachRaw has measured it
		return fn(num, body)
	})
}

// message returns the message field numbered num of b, merging every
// occurrence as protobuf does (the merge of messages is the message of
// their concatenated bytes), and whether there is one.
func message(b []byte, num protowire.Number) (v []byte, ok bool, err error) {
	err = eachField(b, func(n protowire.Number, f []byte) error {
		if n == num {
			v, ok = append(v, f...), true
		}
		return nil
	})
	return v, ok, err
}

// lastBytes returns the last value of the string or bytes field numbered
// num of b.
func lastBytes(b []byte, num protowire.Number) (v []byte, err error) {
	err = eachField(b, func(n protowire.Number, f []byte) error {
		if n == num {
			v = f
		}
		return nil
	})
	return v, err
}

// lastVarint returns the last value of the varint field numbered num of b.
func lastVarint(b []byte, num protowire.Number) (v uint64, err error) {
	err = eachRaw(b, func(n protowire.Number, typ protowire.Type, f []byte) error {
		if n == num && typ == protowire.VarintType {
			v, _ = protowire.ConsumeVarint(f) // eachRaw has measured it
		}
		return nil
	})
	return v, err
}

// lastOf returns which member of a oneof is set in b (the last one given,
// with the wire type its member has), or 0 when none is.
func lastOf(b []byte, members map[protowire.Number]protowire.Type) (set protowire.Number, err error) {
	err = eachRaw(b, func(n protowire.Number, typ protowire.Type, _ []byte) error {
		if want, ok := members[n]; ok && typ == want {
			set = n
		}
		return nil
	})
	return set, err
}
