package ort

import (
	"fmt"
	"os"
	"path/filepath"
)

// LibraryEnv is the environment variable that names the ONNX Runtime shared
// library; it wins over the cache.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// LibraryFile is the name scripts/fetch_ort.sh gives the library in the cache.
const LibraryFile = "libonnxruntime.so.1.30.0"

// LibraryLookup returns the ONNX Runtime shared library to load: the file
// named by ONNXRUNTIME_SHARED_LIBRARY_PATH if the variable is set (a missing
// file is then an error, not a fallback), else LibraryFile in the user cache
// ($XDG_CACHE_HOME/srtool or ~/.cache/srtool). The error says how to get it.
func LibraryLookup() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if err := isFile(p); err != nil {
			return "", fmt.Errorf("ort: %s=%s: %v; point it at libonnxruntime.so (ONNX Runtime 1.30) or unset it to use the cache that `make ort` fills", LibraryEnv, p, err)
		}
		return p, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ort: no ONNX Runtime library: %s is unset and the user cache directory is unknown (%v); run `make ort` or set %s", LibraryEnv, err, LibraryEnv)
	}
	p := filepath.Join(dir, "srtool", LibraryFile)
	if err := isFile(p); err != nil {
		return "", fmt.Errorf("ort: no ONNX Runtime library at %s: run `make ort` to fetch it, or set %s", p, LibraryEnv)
	}
	return p, nil
}

func isFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory")
	}
	return nil
}
