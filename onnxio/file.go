package onnxio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The file helpers every srtool reader shares: readers open input files
// with OpenRegular or ReadRegular. Writers replace outputs with
// internal/atomicfile.

// ErrNotRegular reports an input path that is not a regular file (a named
// pipe, device, socket or folder), which srtool refuses rather than block
// on or read without end.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens path for reading and returns the file and its size. It
// refuses anything but a regular file (after following symbolic links)
// with an error wrapping ErrNotRegular; the open itself does not block, so
// a named pipe with no writer cannot hang it. The caller closes the file.
func OpenRegular(path string) (*os.File, int64, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: it is %s", path, ErrNotRegular, describeMode(st.Mode()))
	}
	return f, st.Size(), nil
}

// CheckRegular reports, like OpenRegular, whether path names a regular file,
// without opening it.
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w: it is %s", path, ErrNotRegular, describeMode(st.Mode()))
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "of type " + m.Type().String()
}

// ReadRegular reads the regular file at path (see OpenRegular) whole. A file
// larger than limit bytes is refused before anything is allocated, and
// reading stops at limit bytes even if the file grows meanwhile.
func ReadRegular(path string, limit int64) ([]byte, error) {
	f, size, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes exceeds the limit of %d bytes", path, size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	// A file that grew since Stat, or that reports no size (as /proc files
	// do), has more; read it up to the limit.
	rest, err := io.ReadAll(io.LimitReader(f, limit-size+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(rest)) > limit-size {
		return nil, fmt.Errorf("%s: grew beyond the limit of %d bytes while being read", path, limit)
	}
	return append(b, rest...), nil
}
