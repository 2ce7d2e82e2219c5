package inference

import (
	"fmt"
	"io"
	"strings"

	"github.com/img2vid/img2vid"
)

// Diagnosis is what `img2vid doctor` prints about inference: the library
// and its version, the providers it was built with, whether a GPU can be
// seen, and every model with whether it loads.
type Diagnosis struct {
	Runtime img2vid.RuntimeInfo
	// Providers are ONNX Runtime's names of the execution providers the
	// library was built with; ProvidersErr says why they are unknown.
	Providers    []string
	ProvidersErr string
	GPU          GPUFacts
	Models       []img2vid.ModelInfo
}

// Diagnose gathers the Diagnosis.
func (r *Runtime) Diagnose() Diagnosis {
	d := Diagnosis{Runtime: r.Info(), GPU: ProbeGPU(r.info.Library), Models: r.ListModels()}
	var err error
	if d.Providers, err = availableProviders(r.info.Library); err != nil {
		d.ProvidersErr = err.Error()
	}
	return d
}

// Write prints the diagnosis as aligned "name: value" lines.
func (d Diagnosis) Write(w io.Writer) {
	p := func(k, format string, args ...any) { fmt.Fprintf(w, "%-18s %s\n", k+":", fmt.Sprintf(format, args...)) }
	p("onnxruntime", "%s (version %s, this build wants %s)", d.Runtime.Library, d.Runtime.Version, ORTVersion)
	if d.ProvidersErr != "" {
		p("providers built in", "unknown: %s", d.ProvidersErr)
	} else {
		p("providers built in", "%s", strings.Join(d.Providers, ", "))
	}
	switch {
	case d.GPU.Visible():
		p("gpu", "visible (%s)", strings.Join(d.GPU.DeviceNodes, ", "))
	case d.GPU.DriverErr != "":
		p("gpu", "none: NVIDIA driver not loadable (%s)", d.GPU.DriverErr)
	default:
		p("gpu", "none: no /dev/nvidia0")
	}
	switch {
	case d.GPU.ProviderLib == "":
		p("cuda provider", "absent (%s not beside the library)", cudaProviderLib)
	case d.GPU.ProviderLibErr != "":
		p("cuda provider", "%s cannot load: %s", d.GPU.ProviderLib, d.GPU.ProviderLibErr)
	default:
		p("cuda provider", "%s loads", d.GPU.ProviderLib)
	}
	if d.Runtime.Note != "" {
		p("provider in use", "%s (%s)", d.Runtime.Provider, d.Runtime.Note)
	} else {
		p("provider in use", "%s", d.Runtime.Provider)
	}
	for _, m := range d.Models {
		where := "user"
		if m.Builtin {
			where = "built-in"
		}
		if m.Available {
			p("model "+m.Name, "ok, %s %s", where, m.Kind)
		} else {
			p("model "+m.Name, "NOT LOADABLE, %s: %s", where, m.Reason)
		}
	}
}
