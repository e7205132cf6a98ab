package checkpoint

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// WrapperKeys are the keys under which training scripts commonly nest the
// state_dict, tried in this order.
var WrapperKeys = []string{"state_dict", "model_state_dict", "model", "net", "last"}

// StateDict finds the state_dict in an unpickled torch.save object and
// normalises it:
//
//   - a dict whose values include tensors is the state_dict (entries that are
//     not tensors, such as an "_extra_state" object, are skipped);
//   - otherwise the dict must hold one of WrapperKeys whose value is a dict,
//     searched recursively (at most 4 levels); if none does, the error lists
//     the keys that are there;
//   - Normalize then strips DataParallel "module." prefixes and drops
//     num_batches_tracked.
//
// obj is what the unpickler returned; StateDict is exported for callers that
// unpickle themselves and is used by ReadPyTorch.
func StateDict(obj any) (map[string]Tensor, error) {
	c, err := stateDict(obj)
	if err != nil {
		return nil, err
	}
	return c.Tensors, nil
}

// stateDict is StateDict with the list of what it left out.
func stateDict(obj any) (*Checkpoint, error) {
	c := &Checkpoint{}
	sd, path, err := findStateDict(obj, "", 0, &c.Ignored)
	if err != nil {
		return nil, err
	}
	c.Path = path
	c.Tensors = normalize(sd, path, &c.Ignored)
	sortIgnored(c.Ignored)
	return c, nil
}

// findStateDict returns the state_dict in obj (see StateDict) and its path,
// and appends to ignored every entry it passes over; path names obj's
// place in the file ("" at the top, else the wrapper keys joined by "/").
func findStateDict(obj any, path string, depth int, ignored *[]Ignored) (map[string]Tensor, string, error) {
	entries, ok := dictEntries(obj)
	if !ok {
		return nil, "", fmt.Errorf("checkpoint holds a %s, not a dict", pyTypeName(obj))
	}
	out := map[string]Tensor{}
	for _, e := range entries {
		t, ok := e.val.(*pyTensor)
		if !ok {
			continue
		}
		k, ok := e.key.(string)
		if !ok {
			return nil, "", fmt.Errorf("state_dict key %s is not a string", short(e.key))
		}
		m, err := t.materialize()
		if err != nil {
			return nil, "", fmt.Errorf("tensor %q: %w", k, err)
		}
		out[k] = m
	}
	if len(out) > 0 {
		for _, e := range entries {
			if _, ok := e.val.(*pyTensor); !ok {
				*ignored = append(*ignored, Ignored{Key: joinKey(path, e.key), Type: pyTypeName(e.val), Reason: NotTensorReason})
			}
		}
		return out, path, nil
	}
	if depth < 4 {
		for _, w := range WrapperKeys {
			for _, e := range entries {
				if k, _ := e.key.(string); k == w {
					if _, isDict := dictEntries(e.val); isDict {
						sd, at, err := findStateDict(e.val, joinKey(path, w), depth+1, ignored)
						if err != nil {
							return nil, "", fmt.Errorf("%s: %w", w, err)
						}
						for _, o := range entries {
							if k, _ := o.key.(string); k != w {
								*ignored = append(*ignored, Ignored{Key: joinKey(path, o.key), Type: pyTypeName(o.val), Reason: OutsideReason})
							}
						}
						return sd, at, nil
					}
				}
			}
		}
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, fmt.Sprintf("%s (%s)", joinKey("", e.key), pyTypeName(e.val)))
	}
	slices.Sort(keys)
	if len(entries) == 0 {
		return nil, "", fmt.Errorf("checkpoint holds an empty dict")
	}
	return nil, "", fmt.Errorf("no state_dict found: no tensors and none of the keys %s; the dict holds %s",
		strings.Join(WrapperKeys, ", "), truncList(keys, 20))
}

// joinKey names key inside the dict at path.
func joinKey(path string, key any) string {
	k, ok := key.(string)
	if !ok || len(k) > maxShort {
		k = short(key)
	}
	if path == "" {
		return k
	}
	return path + "/" + k
}

// maxShort bounds what short returns, in bytes.
const maxShort = 200

// short formats a value taken from a pickle for a message or a key list:
// strings, numbers, booleans and None as Python writes them, anything else
// by its type, cut to about maxShort bytes. A pickle can build a value from
// many references to one large object (a tuple of 10⁵ references to a
// 1 MB string), which fmt's %v would spell out in full.
func short(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x[:min(len(x), maxShort)])
	case int, int64, float64, bool:
		s = fmt.Sprint(x)
	case nil:
		s = "None"
	case *big.Int:
		if x.BitLen() > 256 {
			return fmt.Sprintf("<int of %d bits>", x.BitLen())
		}
		s = x.String()
	default:
		return "<" + pyTypeName(v) + ">"
	}
	if len(s) > maxShort {
		s = s[:maxShort] + "…"
	}
	return s
}

type entry struct{ key, val any }

func dictEntries(obj any) ([]entry, bool) {
	switch d := obj.(type) {
	case *types.OrderedDict:
		out := make([]entry, 0, d.Len())
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			out = append(out, entry{e.Key, e.Value})
		}
		return out, true
	case *types.Dict:
		out := make([]entry, 0, d.Len())
		for _, e := range *d {
			out = append(out, entry{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}

func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case *pyTensor:
		return "tensor"
	case *types.OrderedDict, *types.Dict:
		return "dict"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case string:
		return "str"
	case int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case *opaqueObject:
		return x.class.qualName()
	case *opaque:
		return "class " + x.qualName()
	}
	return fmt.Sprintf("%T", v)
}

// Normalize returns sd without DataParallel's "module." prefix (stripped
// while every key has it) and without BatchNorm's num_batches_tracked
// counters, which no ONNX export contains. It does not copy tensor data.
func Normalize(sd map[string]Tensor) map[string]Tensor { return normalize(sd, "", nil) }

// normalize is Normalize; when ignored is not nil it appends the counters
// it drops, named inside the state_dict at path.
func normalize(sd map[string]Tensor, path string, ignored *[]Ignored) map[string]Tensor {
	out := make(map[string]Tensor, len(sd))
	for k, v := range sd {
		if !isBNCounter(k) {
			out[k] = v
		} else if ignored != nil {
			*ignored = append(*ignored, Ignored{Key: joinKey(path, k), Type: "tensor", Reason: CounterReason})
		}
	}
	for len(out) > 0 {
		for k := range out {
			if !strings.HasPrefix(k, "module.") {
				return out
			}
		}
		stripped := make(map[string]Tensor, len(out))
		for k, v := range out {
			stripped[strings.TrimPrefix(k, "module.")] = v
		}
		out = stripped
	}
	return out
}

func isBNCounter(name string) bool {
	return name == "num_batches_tracked" || strings.HasSuffix(name, ".num_batches_tracked")
}

// truncList joins names, eliding all but the first max.
func truncList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(names[:max], ", "), len(names)-max)
}
