package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/semirobust/srtool/internal/atomicfile"
)

// FileDigests returns the hex SHA-256 of each file by path. Reports that
// have companion outputs (models, weights) record them and are written last,
// so a reader can check that the files on disk are the set the report
// describes (a kill between two renames leaves a mix of old and new).
func FileDigests(paths ...string) (map[string]string, error) {
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", p, err)
		}
		out[p] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// WriteJSON writes v as indented JSON to path atomically ("" = do nothing).
func WriteJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}
