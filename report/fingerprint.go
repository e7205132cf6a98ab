package report

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/shard"
)

// FingerprintIgnore lists flags that do not change a run's results: where
// output goes, how it is split, resumed or parallelised.
var FingerprintIgnore = map[string]bool{
	"json": true, "shard": true, "skip-done": true, "threads": true, "resume": true,
	"save-logits": true, "save-adv": true, "per-sample": true, "checkpoint-dir": true,
	"o": true, "plot": true, "safetensors": true, "device": true,
}

// Fingerprint is the hex SHA-256 of what determines a run's results: the
// command, the tool version, the bytes of each input file, the data actually
// used (the whole selection, before sharding; nil for none) and every flag
// of ri except those in FingerprintIgnore. Two pieces of one run have the
// same fingerprint.
func Fingerprint(ri RunInfo, files []string, d *dataset.Dataset) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "command %s\nversion %s\n", ri.Command, ri.Version)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %d\n", len(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", p, err)
		}
	}
	if d != nil {
		fmt.Fprintf(h, "data %d %d %d %d %d\n", d.Len(), d.C, d.H, d.W, d.Classes)
		var b [8]byte
		for _, v := range d.X {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, y := range d.Y {
			binary.LittleEndian.PutUint64(b[:], uint64(y))
			h.Write(b[:])
		}
	}
	names := make([]string, 0, len(ri.Flags))
	for k := range ri.Flags {
		if !FingerprintIgnore[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		v, _ := json.Marshal(ri.Flags[k])
		fmt.Fprintf(h, "flag %s=%s\n", k, v)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AlreadyDone reports whether path holds a complete report with this
// fingerprint and shard (a retried array task can skip its work).
func AlreadyDone(path, fingerprint string, s shard.Shard) bool {
	if path == "" {
		return false
	}
	b, err := onnxio.ReadRegular(path, MaxBytes)
	if err != nil {
		return false
	}
	var h struct {
		Complete    bool      `json:"complete"`
		Fingerprint string    `json:"fingerprint"`
		Shard       *Sharding `json:"sharding"`
	}
	if json.Unmarshal(b, &h) != nil || !h.Complete || h.Fingerprint != fingerprint {
		return false
	}
	if h.Shard == nil {
		return s.IsWhole()
	}
	return h.Shard.Shard == s
}
