package inference

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/img2vid/img2vid"
)

// Devices a user may ask for.
const (
	DeviceAuto = "auto" // CUDA when it can run, else CPU (said in the log and RuntimeInfo.Note)
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda" // CUDA or an error saying why not
)

// Execution providers, as RuntimeInfo.Provider reports them.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
)

// cudaProviderLib is the file ONNX Runtime loads for its CUDA execution
// provider; it must sit beside libonnxruntime.
const cudaProviderLib = "libonnxruntime_providers_cuda.so"

// GPUFacts are what this machine says about running ONNX Runtime on CUDA,
// gathered by ProbeGPU. Each reason field is empty when that part is fine.
type GPUFacts struct {
	// ProviderLib is the CUDA provider library beside libonnxruntime, or ""
	// when there is none (a CPU-only build).
	ProviderLib string
	// ProviderLibErr is why the provider library cannot be loaded, usually
	// the first missing CUDA or cuDNN library.
	ProviderLibErr string
	// DriverErr is why the NVIDIA driver library libcuda.so.1 cannot be
	// loaded.
	DriverErr string
	// DeviceNodes are the /dev/nvidiaN devices present.
	DeviceNodes []string
}

// Visible reports whether a GPU and its driver can be seen, whatever the
// state of ONNX Runtime's CUDA provider.
func (f GPUFacts) Visible() bool { return f.DriverErr == "" && len(f.DeviceNodes) > 0 }

// ProbeGPU gathers the GPUFacts for the ONNX Runtime library at lib.
func ProbeGPU(lib string) GPUFacts {
	var f GPUFacts
	if p := filepath.Join(filepath.Dir(lib), cudaProviderLib); regularFile(p) {
		f.ProviderLib = p
		if err := probeLibrary(p); err != nil {
			f.ProviderLibErr = err.Error()
		}
	}
	if err := probeLibrary("libcuda.so.1"); err != nil {
		f.DriverErr = err.Error()
	}
	f.DeviceNodes, _ = filepath.Glob("/dev/nvidia[0-9]*")
	return f
}

// cudaBlocker returns why CUDA cannot run given the facts, or "".
func cudaBlocker(lib string, f GPUFacts) string {
	switch {
	case f.ProviderLib == "":
		return fmt.Sprintf("the ONNX Runtime library %s has no CUDA provider (%s is not beside it; this is a CPU-only build)", lib, cudaProviderLib)
	case f.DriverErr != "":
		return fmt.Sprintf("no NVIDIA driver: libcuda.so.1 cannot be loaded (%s)", f.DriverErr)
	case len(f.DeviceNodes) == 0:
		return "no GPU visible: there is no /dev/nvidia0 (run the container with --gpus all)"
	case f.ProviderLibErr != "":
		return fmt.Sprintf("the CUDA provider %s cannot be loaded, a CUDA or cuDNN library is missing: %s", f.ProviderLib, f.ProviderLibErr)
	}
	return ""
}

// ProviderPlan is the first half of choosing an execution provider: whether
// to try CUDA at all, or why not.
type ProviderPlan struct {
	TryCUDA bool
	// Note says why CPU was chosen when the device was auto.
	Note string
}

// NormalizeDevice checks a device name ("" means auto) and returns it in
// its canonical form.
func NormalizeDevice(device string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(device))
	switch d {
	case "":
		return DeviceAuto, nil
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	}
	return "", img2vid.Errorf(img2vid.EINVALID, "device must be cpu, cuda or auto, got %q", device)
}

// PlanProvider decides from the facts whether the device asked for can try
// CUDA. cuda that cannot be honoured is an EUNAVAILABLE error saying why;
// auto falls back to CPU with a note saying why. It touches nothing, so the
// decision is tested without a GPU.
func PlanProvider(device, lib string, f GPUFacts) (ProviderPlan, error) {
	d, err := NormalizeDevice(device)
	if err != nil {
		return ProviderPlan{}, err
	}
	if d == DeviceCPU {
		return ProviderPlan{}, nil
	}
	if why := cudaBlocker(lib, f); why != "" {
		if d == DeviceCUDA {
			return ProviderPlan{}, img2vid.Errorf(img2vid.EUNAVAILABLE, "device cuda cannot be used: %s", why)
		}
		return ProviderPlan{Note: "CUDA not used: " + why + "; running on CPU"}, nil
	}
	return ProviderPlan{TryCUDA: true}, nil
}

// SettleProvider is the second half: given the device asked for and the
// outcome of creating and running a session with the CUDA provider
// (cudaErr, nil on success), it returns the provider in use and a note, or
// an error when cuda was asked for and failed.
func SettleProvider(device string, cudaErr error) (provider, note string, err error) {
	if cudaErr == nil {
		return ProviderCUDA, "", nil
	}
	if d, _ := NormalizeDevice(device); d == DeviceCUDA {
		return "", "", img2vid.Errorf(img2vid.EUNAVAILABLE, "device cuda cannot be used: a session with the CUDA provider failed: %w", cudaErr)
	}
	return ProviderCPU, fmt.Sprintf("CUDA not used: a session with the CUDA provider failed (%v); running on CPU", cudaErr), nil
}
