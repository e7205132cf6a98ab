package onnxio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The file helpers every srtool reader and writer shares: readers open
// input files with OpenRegular or ReadRegular, writers replace outputs with
// WriteAtomic.

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

// tempMarker names the temporary files WriteAtomic makes:
// ".NAME.srtool-tmp-PID-RANDOM" beside the output NAME.
const tempMarker = ".srtool-tmp-"

// WriteFileAtomic writes data to path atomically; see WriteAtomic.
func WriteFileAtomic(path string, data []byte) error {
	return WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic replaces path with what fill writes, atomically: fill writes
// (buffered) into a temporary file in the same folder, which is synced and
// then renamed over path, so readers see the old file or the new one, never
// a partial one. The result gets the mode of the file it replaces, or 0644.
//
// The temporary file is called ".NAME.srtool-tmp-PID-RANDOM" (NAME is
// path's base name, PID this process). If the process is killed before the
// rename (SIGKILL, power loss) that file stays behind; the next WriteAtomic
// of the same path removes every such file of NAME whose PID is no longer
// running (and temporary files ".NAME.tmpDIGITS" of older srtool versions
// that are more than an hour old). Files of live processes are left alone.
func WriteAtomic(path string, fill func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	f, err := os.CreateTemp(dir, "."+base+tempMarker+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// os.CreateTemp makes the file 0600; give the result the mode of the
	// file it replaces, or 0644.
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	// Flush to disk before the rename so a crash cannot leave an empty file
	// under the final name.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// legacyTempAge is how old a temporary file of an older srtool version
// (".NAME.tmpDIGITS", no PID to check) must be before it counts as stale.
const legacyTempAge = time.Hour

// removeStaleTemps deletes, best effort, the temporary files that earlier
// writes of dir/base left behind (see WriteAtomic).
func removeStaleTemps(dir, base string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if rest, ok := strings.CutPrefix(name, "."+base+tempMarker); ok {
			pidStr, _, _ := strings.Cut(rest, "-")
			pid, err := strconv.Atoi(pidStr)
			if err != nil || pid <= 0 || pid == self || processAlive(pid) {
				continue
			}
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if rest, ok := strings.CutPrefix(name, "."+base+".tmp"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > legacyTempAge {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
}
