package inference

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// GraphInfo is what a model graph is made of: its nodes, those of every
// subgraph (the bodies of Loop, If and Scan) included, counted by
// operator. A runtime schedules each node as one kernel launch, so the
// count is what a graph costs before any arithmetic: ONNX Runtime's
// session start-up grows with its square, and on a GPU each node is a
// launch.
type GraphInfo struct {
	Nodes int
	// Ops counts the nodes by operator: "Conv" in the default domain,
	// "com.microsoft.FusedConv" in another.
	Ops map[string]int
}

// ReadGraphInfo reads a model's GraphInfo from its bytes.
func ReadGraphInfo(model []byte) (GraphInfo, error) {
	g := GraphInfo{Ops: map[string]int{}}
	graph, _, err := message(model, modelGraph)
	if err != nil {
		return g, err
	}
	return g, g.add(graph)
}

// add counts the nodes of graph and of its subgraphs.
func (g *GraphInfo) add(graph []byte) error {
	return eachField(graph, func(num protowire.Number, node []byte) error {
		if num != graphNode {
			return nil
		}
		op, err := lastBytes(node, nodeOpType)
		if err != nil {
			return err
		}
		domain, err := lastBytes(node, nodeDomain)
		if err != nil {
			return err
		}
		name := string(op)
		if d := string(domain); d != "" && d != "ai.onnx" {
			name = d + "." + name
		}
		g.Nodes++
		g.Ops[name]++
		return eachField(node, func(num protowire.Number, attr []byte) error {
			if num != nodeAttribute {
				return nil
			}
			return eachField(attr, func(num protowire.Number, sub []byte) error {
				if num == attrGraph || num == attrGraphs {
					return g.add(sub)
				}
				return nil
			})
		})
	})
}

// merge adds other's nodes to g's: a two-graph model counted whole.
func (g *GraphInfo) merge(other GraphInfo) {
	g.Nodes += other.Nodes
	for op, n := range other.Ops {
		g.Ops[op] += n
	}
}

// NotOnCUDA returns, sorted, the operators of the graph that ONNX
// Runtime's CUDA provider has no kernel for: on a GPU each falls back to
// the CPU, with a copy of its tensors each way.
func (g GraphInfo) NotOnCUDA() []string {
	var out []string
	for _, op := range slices.Sorted(maps.Keys(g.Ops)) {
		if !cudaOps[op] {
			out = append(out, op)
		}
	}
	return out
}
