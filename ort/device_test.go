package ort

import (
	"maps"
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		want    Device
		wantErr bool
	}{
		{in: "cpu", want: Device{Kind: "cpu"}},
		{in: "cuda", want: Device{Kind: "cuda", ID: 0}},
		{in: "cuda:0", want: Device{Kind: "cuda", ID: 0}},
		{in: "cuda:1", want: Device{Kind: "cuda", ID: 1}},
		{in: "cuda:12", want: Device{Kind: "cuda", ID: 12}},
		{in: "", wantErr: true},
		{in: "CPU", wantErr: true},
		{in: "gpu", wantErr: true},
		{in: "cuda:", wantErr: true},
		{in: "cuda:-1", wantErr: true},
		{in: "cuda:+1", wantErr: true},
		{in: "cuda:x", wantErr: true},
		{in: "cuda:1:2", wantErr: true},
		{in: "cpu:0", wantErr: true},
		{in: " cuda", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDevice(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseDevice(%q) = %+v, nil; want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
		}
		if back, err := ParseDevice(got.String()); err != nil || back != got {
			t.Errorf("ParseDevice(%q.String() = %q) = %+v, %v; want it back", tt.in, got.String(), back, err)
		}
	}
}

func TestDeviceString(t *testing.T) {
	for d, want := range map[Device]string{
		{}:                    "cpu",
		{Kind: "cpu", ID: 3}:  "cpu",
		{Kind: "cuda"}:        "cuda:0",
		{Kind: "cuda", ID: 2}: "cuda:2",
		{Kind: "rocm", ID: 1}: "rocm:1",
	} {
		if got := d.String(); got != want {
			t.Errorf("%+v.String() = %q; want %q", d, got, want)
		}
	}
}

func TestCUDAProviderOptions(t *testing.T) {
	defaults := map[string]string{
		"device_id":                 "0",
		"cudnn_conv_algo_search":    "HEURISTIC",
		"arena_extend_strategy":     "kSameAsRequested",
		"do_copy_in_default_stream": "1",
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(defaults)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		dev     Device
		extra   map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults", dev: Device{Kind: "cuda"}, want: defaults},
		{name: "device 3", dev: Device{Kind: "cuda", ID: 3}, want: with("device_id", "3")},
		{name: "override search", dev: Device{Kind: "cuda"}, extra: map[string]string{"cudnn_conv_algo_search": "EXHAUSTIVE"}, want: with("cudnn_conv_algo_search", "EXHAUSTIVE")},
		{name: "override arena", dev: Device{Kind: "cuda"}, extra: map[string]string{"arena_extend_strategy": "kNextPowerOfTwo"}, want: with("arena_extend_strategy", "kNextPowerOfTwo")},
		{name: "extra key passes through", dev: Device{Kind: "cuda", ID: 1}, extra: map[string]string{"gpu_mem_limit": "2147483648", "use_tf32": "0"}, want: with("device_id", "1", "gpu_mem_limit", "2147483648", "use_tf32", "0")},
		{name: "same device_id", dev: Device{Kind: "cuda", ID: 2}, extra: map[string]string{"device_id": "2"}, want: with("device_id", "2")},
		{name: "conflicting device_id", dev: Device{Kind: "cuda", ID: 2}, extra: map[string]string{"device_id": "1"}, wantErr: "conflicts"},
		{name: "bad search", dev: Device{Kind: "cuda"}, extra: map[string]string{"cudnn_conv_algo_search": "FAST"}, wantErr: "EXHAUSTIVE, HEURISTIC, DEFAULT"},
		{name: "bad copy stream", dev: Device{Kind: "cuda"}, extra: map[string]string{"do_copy_in_default_stream": "yes"}, wantErr: "want one of"},
		{name: "empty key", dev: Device{Kind: "cuda"}, extra: map[string]string{"": "1"}, wantErr: "empty key"},
		{name: "cpu device", dev: Device{Kind: "cpu"}, wantErr: "device cpu"},
		{name: "negative id", dev: Device{Kind: "cuda", ID: -1}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cudaProviderOptions(tt.dev, tt.extra)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("cudaProviderOptions(%v, %v) = %v, %v; want an error containing %q", tt.dev, tt.extra, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("cudaProviderOptions(%v, %v) = %v, %v; want %v", tt.dev, tt.extra, got, err, tt.want)
			}
		})
	}
	// The caller's map and the defaults are not modified.
	extra := map[string]string{"cudnn_conv_algo_search": "DEFAULT"}
	if _, err := cudaProviderOptions(Device{Kind: "cuda"}, extra); err != nil {
		t.Fatal(err)
	}
	if len(extra) != 1 || cudaDefaults["cudnn_conv_algo_search"] != "HEURISTIC" {
		t.Errorf("cudaProviderOptions modified its inputs: extra=%v defaults=%v", extra, cudaDefaults)
	}
}

func TestCUDAUnavailableErrorMessage(t *testing.T) {
	e := &CUDAUnavailableError{Device: Device{Kind: "cuda", ID: 1}, Library: "/x/libonnxruntime.so", Err: errErrForTest}
	msg := e.Error()
	for _, want := range []string{"cuda:1", "GPU build of ONNX Runtime 1.30", "onnxruntime-linux-x64-gpu-1.30", "libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so", "CUDA 12", "cuDNN 9", LibraryEnv, "boom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("CUDAUnavailableError = %q; want it to mention %q", msg, want)
		}
	}
	if strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
		t.Errorf("CUDAUnavailableError = %q; want one sentence", msg)
	}
}

var errErrForTest = errorString("boom")

type errorString string

func (e errorString) Error() string { return string(e) }
