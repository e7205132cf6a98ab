package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxExpansion bounds the bytes of strings, bytes and long integers that a
// pickle's back-references (DUP, GET) may repeat in all, as printed; see
// scanPickle.
const maxExpansion = 256 << 20

// printed is the most characters one byte of a string, bytes or long
// argument takes when printed (a byte as 0x12, ; a long as 2.4 digits).
const printed = 6

// scanPickle walks the opcodes of the pickle starting at b[0] (the way
// Python's pickletools.genops does) and returns its length up to and
// including STOP. It checks that every counted argument fits in b, so the
// unpickler, which allocates a counted argument before reading it, never
// allocates more than the input holds.
//
// It also bounds expansion: one opcode byte (DUP, or a GET of a memoised
// value) pushes another reference to a string of any size, so a 2 MB pickle
// can build a tuple of a million references to a 1 MB string, and printing
// that tuple (as the unpickler's own error messages do, with %#v) would
// take a terabyte. scanPickle tracks the size of the value each DUP and GET
// repeats (conservatively: after POP, the largest seen so far) and refuses
// a pickle whose repeats add up to more than maxExpansion bytes. Containers
// print their nested containers as addresses, so repeats do not multiply.
func scanPickle(b []byte) (int, error) {
	p := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-p) {
			return fmt.Errorf("pickle truncated: opcode at byte %d needs %d more bytes, %d left", p, n, len(b)-p)
		}
		return nil
	}
	line := func() (string, error) {
		i := bytes.IndexByte(b[p:], '\n')
		if i < 0 {
			return "", fmt.Errorf("pickle truncated: unterminated line at byte %d", p)
		}
		s := string(b[p : p+i])
		p += i + 1
		return s, nil
	}
	memo := map[uint64]uint64{} // memo index → size of the value put there
	var top, largest, repeated uint64
	leaf := func(n uint64) { top, largest = n, max(largest, n) }
	put := func(i uint64) { memo[i] = top }
	repeat := func() error { // another reference to the value on top
		if repeated += top; repeated > maxExpansion {
			return fmt.Errorf("pickle repeats %d bytes of strings by reference (at byte %d), more than %d: an expansion bomb", repeated, p, int64(maxExpansion))
		}
		return nil
	}
	get := func(i uint64) error {
		top = memo[i]
		return repeat()
	}
	for p < len(b) {
		op := b[p]
		p++
		var err error
		switch op {
		case '.': // STOP
			return p, nil
		case '2': // DUP
			err = repeat()
		case '0', '1': // POP, POP_MARK: an older value is on top again
			top = largest
		case 0x94: // MEMOIZE
			put(uint64(len(memo)))
		case '(', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x97, 0x98:
			top = 0
		case 'K', 'h', 'q', 0x80, 0x82:
			if err = need(1); err == nil {
				switch op {
				case 'h':
					err = get(uint64(b[p]))
				case 'q':
					put(uint64(b[p]))
				default:
					top = 0
				}
			}
			p++
		case 'M', 0x83:
			err = need(2)
			p += 2
			top = 0
		case 'J', 'j', 'r', 0x84:
			if err = need(4); err == nil {
				i := uint64(binary.LittleEndian.Uint32(b[p:]))
				switch op {
				case 'j':
					err = get(i)
				case 'r':
					put(i)
				default:
					top = 0
				}
			}
			p += 4
		case 'G':
			err = need(8)
			p += 8
			top = 0
		case 'F', 'I', 'L', 'P', 'S', 'V':
			var s string
			if s, err = line(); err == nil {
				leaf(printed * uint64(len(s)))
			}
		case 'g', 'p': // GET, PUT with a decimal index
			var s string
			if s, err = line(); err == nil {
				i, perr := strconv.ParseUint(s, 10, 64)
				switch {
				case perr != nil:
					err = fmt.Errorf("pickle: bad memo index %.20q at byte %d", s, p)
				case op == 'g':
					err = get(i)
				default:
					put(i)
				}
			}
		case 'c', 'i':
			if _, err = line(); err == nil {
				_, err = line()
			}
			top = 0
		case 'U', 'C', 0x8c, 0x8a:
			if err = need(1); err == nil {
				n := uint64(b[p])
				p++
				err = need(n)
				p += int(n)
				leaf(printed * n)
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
				leaf(printed * n)
			}
		case 0x8d, 0x8e, 0x96:
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(b[p:])
				p += 8
				err = need(n)
				p += int(n)
				leaf(printed * n)
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

// qualName is "module.name", each part cut to maxShort bytes: a pickle
// may name a class with a megabyte-long line and refer to it many times.
func (c *opaque) qualName() string {
	return c.module[:min(len(c.module), maxShort)] + "." + c.name[:min(len(c.name), maxShort)]
}

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
