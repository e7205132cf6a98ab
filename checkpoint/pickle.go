package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// scanPickle walks the opcodes of the pickle starting at b[0] (the way
// Python's pickletools.genops does) and returns its length up to and
// including STOP. It checks that every counted argument fits in b, so the
// unpickler, which allocates a counted argument before reading it, never
// allocates more than the input holds.
func scanPickle(b []byte) (int, error) {
	p := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-p) {
			return fmt.Errorf("pickle truncated: opcode at byte %d needs %d more bytes, %d left", p, n, len(b)-p)
		}
		return nil
	}
	line := func() error {
		i := bytes.IndexByte(b[p:], '\n')
		if i < 0 {
			return fmt.Errorf("pickle truncated: unterminated line at byte %d", p)
		}
		p += i + 1
		return nil
	}
	for p < len(b) {
		op := b[p]
		p++
		var err error
		switch op {
		case '.': // STOP
			return p, nil
		case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
		case 'K', 'h', 'q', 0x80, 0x82:
			err = need(1)
			p++
		case 'M', 0x83:
			err = need(2)
			p += 2
		case 'J', 'j', 'r', 0x84:
			err = need(4)
			p += 4
		case 'G':
			err = need(8)
			p += 8
		case 'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p':
			err = line()
		case 'c', 'i':
			if err = line(); err == nil {
				err = line()
			}
		case 'U', 'C', 0x8c, 0x8a:
			if err = need(1); err == nil {
				n := uint64(b[p])
				p++
				err = need(n)
				p += int(n)
			}
		case 'T', 'X', 'B', 0x8b:
			if err = need(4); err == nil {
				n := uint64(binary.LittleEndian.Uint32(b[p:]))
				p += 4
				if (op == 'T' || op == 0x8b) && n > math.MaxInt32 {
					return 0, fmt.Errorf("pickle: negative length at byte %d", p-5)
				}
				err = need(n)
				p += int(n)
			}
		case 0x8d, 0x8e, 0x96:
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(b[p:])
				p += 8
				err = need(n)
				p += int(n)
			}
		case 0x95: // FRAME: the framed opcodes follow inline
			if err = need(8); err == nil {
				err = need(binary.LittleEndian.Uint64(b[p:]))
				p += 8
			}
		default:
			return 0, fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, p-1)
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("pickle truncated: no STOP opcode")
}

// unpickle loads the pickle at the start of b with the given hooks and
// returns the value and the number of bytes it used. Malformed input that
// trips the unpickler is returned as an error, never a panic.
func unpickle(b []byte, findClass func(module, name string) (any, error), persistentLoad func(any) (any, error)) (v any, n int, err error) {
	n, err = scanPickle(b)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			v, n, err = nil, 0, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(b[:n]))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	v, err = u.Load()
	if err != nil {
		return nil, 0, fmt.Errorf("unpickle: %w", err)
	}
	return v, n, nil
}

// opaque stands for any Python class the checkpoint names that srtool does
// not need (numpy scalars, argparse.Namespace, optimizer classes, …): it can
// be called, instantiated and given state, so such objects never stop a
// checkpoint from loading.
type opaque struct{ module, name string }

type opaqueObject struct{ class *opaque }

func (c *opaque) Call(...any) (any, error)        { return &opaqueObject{c}, nil }
func (c *opaque) PyNew(...any) (any, error)       { return &opaqueObject{c}, nil }
func (*opaqueObject) PySetState(any) error        { return nil }
func (*opaqueObject) PyDictSet(_, _ any) error    { return nil }
func (*opaqueObject) PySetAttr(string, any) error { return nil }

var (
	_ types.Callable        = (*opaque)(nil)
	_ types.PyNewable       = (*opaque)(nil)
	_ types.PyStateSettable = (*opaqueObject)(nil)
	_ types.PyDictSettable  = (*opaqueObject)(nil)
	_ types.PyAttrSettable  = (*opaqueObject)(nil)
)
