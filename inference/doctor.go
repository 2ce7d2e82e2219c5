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

// Diagnose gathers the Diagnosis. It also creates a session for every
// usable model of the user's, on the provider in use: the check that lists
// a model reads only its inputs and outputs (modelIO), and doctor is where
// one should learn that ONNX Runtime cannot load a model, before a job
// does. The built-in models are left out: the project's tests load them,
// and flow2's and flow3's sessions take seconds each.
func (r *Runtime) Diagnose() Diagnosis {
	d := Diagnosis{Runtime: r.Info(), GPU: ProbeGPU(r.info.Library), Models: r.loadUserModels()}
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

// loadUserModels lists the models as ListModels does, marking the user's
// models that ONNX Runtime cannot load, with its reason.
func (r *Runtime) loadUserModels() []img2vid.ModelInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []img2vid.ModelInfo
	for _, c := range r.scan() {
		if c.info.Available && !c.info.Builtin {
			if err := r.trySession(c); err != nil {
				c.info.Available, c.info.Reason = false, err.Error()
			}
		}
		out = append(out, c.info)
	}
	return out
}

// trySession creates the sessions of the checked model and closes them.
func (r *Runtime) trySession(c checkedModel) error {
	main, motion, err := r.openSessions(c)
	if err != nil {
		return err
	}
	if motion != nil {
		motion.close()
	}
	return main.close()
}
