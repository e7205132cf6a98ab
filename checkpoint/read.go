package checkpoint

import (
	"bytes"
	"fmt"
	"os"
)

// Read reads a weights file of any supported format, told apart by content:
// a torch.save checkpoint (zip or legacy pickle; .pt, .pth, .tar, .bin) or a
// safetensors file. The state_dict is normalised as by Normalize
// ("module." stripped, num_batches_tracked dropped).
func Read(path string) (map[string]Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read weights: %w", err)
	}
	var sd map[string]Tensor
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) || len(b) > 0 && b[0] == 0x80 {
		sd, err = DecodePyTorch(b)
	} else {
		sd, _, err = DecodeSafetensors(b)
		sd = Normalize(sd)
	}
	if err != nil {
		return nil, fmt.Errorf("read weights %s: %w", path, err)
	}
	return sd, nil
}
