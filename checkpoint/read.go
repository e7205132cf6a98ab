package checkpoint

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/semirobust/srtool/onnxio"
)

// MaxFileBytes bounds the size of a weights file Load reads (it is read
// into memory whole): 32 GiB.
const MaxFileBytes = 32 << 30

// Checkpoint is the state_dict a weights file holds and what was left out
// of it.
type Checkpoint struct {
	// Tensors is the state_dict, normalised as by Normalize.
	Tensors map[string]Tensor
	// Path says where in a torch.save object the state_dict was found:
	// "" for the object itself, else the wrapper keys joined by "/"
	// ("state_dict", "model/net").
	Path string
	// Ignored lists, sorted by Key, every entry of the file that is not in
	// Tensors: non-tensor entries of the state_dict (an "_extra_state"
	// object, an os.system global), entries beside the state_dict
	// ("epoch", "optimizer") and the num_batches_tracked counters Normalize
	// drops. Safetensors files hold only tensors, so nothing is ignored.
	Ignored []Ignored
}

// Ignored is one entry of a weights file that Load left out.
type Ignored struct {
	// Key is the entry's path from the top of the object, dict keys joined
	// by "/" ("epoch", "state_dict/_metadata", "state_dict/bn1.num_batches_tracked").
	Key string `json:"key"`
	// Type is the entry's Python type: "int", "dict", "tensor",
	// "posix.system" (a global the pickle names; nothing was called).
	Type string `json:"type"`
	// Reason is NotTensorReason, OutsideReason or CounterReason.
	Reason string `json:"reason"`
}

// Reasons an entry is ignored.
const (
	NotTensorReason = "not a tensor"
	OutsideReason   = "outside the state_dict"
	CounterReason   = "BatchNorm num_batches_tracked counter"
)

// String returns "key (type): reason".
func (ig Ignored) String() string { return fmt.Sprintf("%s (%s): %s", ig.Key, ig.Type, ig.Reason) }

func sortIgnored(ig []Ignored) {
	slices.SortFunc(ig, func(a, b Ignored) int { return strings.Compare(a.Key, b.Key) })
}

// Load reads a weights file of any supported format, told apart by
// content: a torch.save checkpoint (zip or legacy pickle; .pt, .pth, .tar,
// .bin) or a safetensors file, and returns its state_dict and the list of
// entries it ignored. The file must be a regular file of at most
// MaxFileBytes; every size, offset and stride inside it is checked,
// overflow-safe, against the file before memory is allocated.
func Load(path string) (*Checkpoint, error) {
	return loadFile(path, func(b []byte) (*Checkpoint, error) {
		if bytes.HasPrefix(b, []byte("PK\x03\x04")) || len(b) > 0 && b[0] == 0x80 {
			return decodePyTorch(b)
		}
		sd, _, err := DecodeSafetensors(b)
		if err != nil {
			return nil, err
		}
		c := &Checkpoint{}
		c.Tensors = normalize(sd, "", &c.Ignored)
		sortIgnored(c.Ignored)
		return c, nil
	})
}

// Read is Load without the list of ignored entries.
func Read(path string) (map[string]Tensor, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	return c.Tensors, nil
}

// loadFile reads path (regular, at most MaxFileBytes) and decodes it.
func loadFile(path string, decode func([]byte) (*Checkpoint, error)) (*Checkpoint, error) {
	b, err := onnxio.ReadRegular(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("read weights: %w", err)
	}
	c, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("read weights %s: %w", path, err)
	}
	return c, nil
}
