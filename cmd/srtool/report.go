package main

import (
	"encoding/json"
	"fmt"

	"github.com/semirobust/srtool/onnxio"
)

// writeJSON writes v as indented JSON to path atomically ("" = do nothing).
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return onnxio.WriteFileAtomic(path, append(b, '\n'))
}
