package inference

import (
	"slices"
	"testing"
)

// TestReadGraphInfo counts the nodes of a graph whose If node carries two
// subgraphs, and names the operators the CUDA provider lacks.
func TestReadGraphInfo(t *testing.T) {
	node := func(op, domain string, attrs ...[]byte) []byte {
		b := slices.Concat(pbString(1, "x"), pbString(2, "y"), pbString(4, op))
		if domain != "" {
			b = append(b, pbString(7, domain)...)
		}
		for _, a := range attrs {
			b = append(b, pbBytes(5, a)...)
		}
		return b
	}
	graph := func(nodes ...[]byte) []byte {
		var b []byte
		for _, n := range nodes {
			b = append(b, pbBytes(1, n)...)
		}
		return b
	}
	then := graph(node("Relu", ""), node("Abs", ""))
	otherwise := graph(node("Foo", "com.example"))
	ifNode := node("If", "", slices.Concat(pbString(1, "then_branch"), pbBytes(6, then)),
		slices.Concat(pbString(1, "else_branch"), pbBytes(6, otherwise)))
	model := pbBytes(7, graph(ifNode, node("Conv", ""), node("GridSample", "ai.onnx")))
	g, err := ReadGraphInfo(model)
	if err != nil {
		t.Fatal(err)
	}
	if g.Nodes != 6 || g.Ops["If"] != 1 || g.Ops["Relu"] != 1 || g.Ops["GridSample"] != 1 || g.Ops["com.example.Foo"] != 1 {
		t.Errorf("got %d nodes %v, want 6: If, its 3 subgraph nodes, Conv and GridSample", g.Nodes, g.Ops)
	}
	if got := g.NotOnCUDA(); !slices.Equal(got, []string{"com.example.Foo"}) {
		t.Errorf("NotOnCUDA = %v, want the operator of another domain only", got)
	}
	if _, err := ReadGraphInfo([]byte{0xff, 0xff}); err == nil {
		t.Error("malformed bytes read without error")
	}
}
