package ort

import (
	"fmt"
	"strconv"
	"strings"
)

// Device says where a Session runs: Kind "cpu" (ID ignored) or "cuda" with
// the CUDA device ordinal ID. The zero value is invalid; use ParseDevice or
// Device{Kind: "cpu"}. Options treats an empty Kind as "cpu".
type Device struct {
	Kind string // "cpu" or "cuda"
	ID   int
}

// ParseDevice parses the --device flag: "cpu", "cuda" (device 0) or
// "cuda:N" with N ≥ 0. Anything else is an error.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return Device{Kind: "cpu"}, nil
	case s == "cuda":
		return Device{Kind: "cuda"}, nil
	case strings.HasPrefix(s, "cuda:"):
		id, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || id < 0 || strings.HasPrefix(s[len("cuda:"):], "+") {
			return Device{}, fmt.Errorf("ort: device %q: want cuda:N with N a device number ≥ 0", s)
		}
		return Device{Kind: "cuda", ID: id}, nil
	}
	return Device{}, fmt.Errorf("ort: device %q: want cpu, cuda or cuda:N", s)
}

// String returns the form ParseDevice reads: "cpu" or "cuda:N".
func (d Device) String() string {
	switch d.Kind {
	case "cpu", "":
		return "cpu"
	case "cuda":
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return fmt.Sprintf("%s:%d", d.Kind, d.ID)
}

// cudaDefaults are the CUDA execution provider options srtool sets, keys and
// values as documented for ONNX Runtime's CUDA EP ("Configuration Options").
var cudaDefaults = map[string]string{
	// HEURISTIC asks cuDNN for its best guess instead of timing every
	// algorithm (EXHAUSTIVE, ORT's default) on each new input shape: the
	// gradient graphs srtool writes have unusual convolutions (dW as a conv
	// with a feature-map-sized kernel) and ragged last batches, where
	// exhaustive search costs start-up time and workspace memory. It matches
	// PyTorch's default (cudnn.benchmark=False). Override with
	// Options.CUDAOptions["cudnn_conv_algo_search"]="EXHAUSTIVE".
	"cudnn_conv_algo_search": "HEURISTIC",
	// Grow the arena by what is requested rather than to the next power of
	// two, so varying batch shapes do not double the GPU memory held.
	"arena_extend_strategy": "kSameAsRequested",
	// ORT's documented recommendation (and default): copies on the compute
	// stream, which avoids races between copies and kernels.
	"do_copy_in_default_stream": "1",
}

// cudaEnums lists the documented values of the options that take one.
var cudaEnums = map[string][]string{
	"cudnn_conv_algo_search":    {"EXHAUSTIVE", "HEURISTIC", "DEFAULT"},
	"arena_extend_strategy":     {"kNextPowerOfTwo", "kSameAsRequested"},
	"do_copy_in_default_stream": {"0", "1"},
}

// cudaProviderOptions returns the key/value options for the CUDA execution
// provider (OrtCUDAProviderOptionsV2) on device d: device_id, srtool's
// defaults, then extra, which overrides the defaults and may add any other
// documented key (ONNX Runtime rejects unknown ones). extra may not name a
// different device_id than d.
func cudaProviderOptions(d Device, extra map[string]string) (map[string]string, error) {
	if d.Kind != "cuda" {
		return nil, fmt.Errorf("ort: CUDA provider options for device %s", d)
	}
	if d.ID < 0 {
		return nil, fmt.Errorf("ort: CUDA device id %d is negative", d.ID)
	}
	opts := map[string]string{"device_id": strconv.Itoa(d.ID)}
	for k, v := range cudaDefaults {
		opts[k] = v
	}
	for k, v := range extra {
		if k == "" {
			return nil, fmt.Errorf("ort: CUDA provider option with an empty key")
		}
		if k == "device_id" {
			if id, err := strconv.Atoi(v); err != nil || id != d.ID {
				return nil, fmt.Errorf("ort: CUDA option device_id=%q conflicts with device %s", v, d)
			}
		}
		if allowed, ok := cudaEnums[k]; ok && !contains(allowed, v) {
			return nil, fmt.Errorf("ort: CUDA option %s=%q: want one of %s", k, v, strings.Join(allowed, ", "))
		}
		opts[k] = v
	}
	return opts, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
