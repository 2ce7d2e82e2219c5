package inference

import (
	"errors"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
)

func TestPlanProvider(t *testing.T) {
	const lib = "/x/libonnxruntime.so"
	ready := GPUFacts{ProviderLib: "/x/libonnxruntime_providers_cuda.so", DeviceNodes: []string{"/dev/nvidia0"}}
	noProvider := ready
	noProvider.ProviderLib = ""
	noDriver := ready
	noDriver.DriverErr = "libcuda.so.1: cannot open shared object file"
	noDevice := ready
	noDevice.DeviceNodes = nil
	noCUDNN := ready
	noCUDNN.ProviderLibErr = "libcudnn.so.9: cannot open shared object file"
	tests := []struct {
		name, device string
		facts        GPUFacts
		try          bool
		code         string // error code, "" for none
		says         string // in the error or the note
	}{
		{"cpu never tries CUDA", "cpu", ready, false, "", ""},
		{"auto with everything tries CUDA", "auto", ready, true, "", ""},
		{"empty means auto", "", ready, true, "", ""},
		{"cuda with everything tries CUDA", "CUDA", ready, true, "", ""},
		{"cuda on a CPU-only build", "cuda", noProvider, false, img2vid.EUNAVAILABLE, "CPU-only build"},
		{"cuda without a driver", "cuda", noDriver, false, img2vid.EUNAVAILABLE, "no NVIDIA driver"},
		{"cuda without a device", "cuda", noDevice, false, img2vid.EUNAVAILABLE, "no GPU visible"},
		{"cuda without cuDNN", "cuda", noCUDNN, false, img2vid.EUNAVAILABLE, "libcudnn.so.9"},
		{"auto on a CPU-only build falls back and says so", "auto", noProvider, false, "", "CPU-only build"},
		{"auto without a driver falls back and says so", "auto", noDriver, false, "", "no NVIDIA driver"},
		{"auto without cuDNN falls back and says so", "auto", noCUDNN, false, "", "libcudnn.so.9"},
		{"unknown device", "tpu", ready, false, img2vid.EINVALID, `"tpu"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanProvider(tt.device, lib, tt.facts)
			if img2vid.ErrorCode(err) != tt.code {
				t.Fatalf("error %v, want code %q", err, tt.code)
			}
			if plan.TryCUDA != tt.try {
				t.Errorf("TryCUDA = %v, want %v", plan.TryCUDA, tt.try)
			}
			said := plan.Note
			if err != nil {
				said = err.Error()
			}
			if !strings.Contains(said, tt.says) {
				t.Errorf("said %q, want it to mention %q", said, tt.says)
			}
			if tt.code == "" && !tt.try && tt.device == "auto" && !strings.HasSuffix(plan.Note, "running on CPU") {
				t.Errorf("auto fallback note %q does not say it runs on CPU", plan.Note)
			}
		})
	}
}

func TestSettleProvider(t *testing.T) {
	failed := errors.New("CUDA failure 35: driver too old")
	tests := []struct {
		device      string
		cudaErr     error
		provider    string
		code, notes string
	}{
		{"cuda", nil, ProviderCUDA, "", ""},
		{"auto", nil, ProviderCUDA, "", ""},
		{"auto", failed, ProviderCPU, "", "driver too old"},
		{"cuda", failed, "", img2vid.EUNAVAILABLE, "driver too old"},
	}
	for _, tt := range tests {
		provider, note, err := SettleProvider(tt.device, tt.cudaErr)
		if provider != tt.provider || img2vid.ErrorCode(err) != tt.code {
			t.Errorf("%s, %v: got %q, %v; want %q, code %q", tt.device, tt.cudaErr, provider, err, tt.provider, tt.code)
		}
		said := note
		if err != nil {
			said = err.Error()
		}
		if !strings.Contains(said, tt.notes) {
			t.Errorf("%s, %v: said %q, want %q in it", tt.device, tt.cudaErr, said, tt.notes)
		}
	}
}
