// Package atomicfile replaces files atomically: readers of the path see the
// old file or the new one, never a partial one, and a crash leaves no
// half-written file under the final name. It is the one way srtool writes
// its outputs (models, arrays, checkpoints, reports).
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tempMarker names the temporary files Write makes:
// ".NAME.srtool-tmp-PID-RANDOM" beside the output NAME.
const tempMarker = ".srtool-tmp-"

// WriteFile writes data to path atomically; see Write.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what fill writes, atomically: fill writes
// (buffered) into a temporary file in the same folder, which is synced and
// then renamed over path, so readers see the old file or the new one, never
// a partial one; the folder is then synced (best effort) so that the rename
// survives a crash. The folder must exist. The result gets the mode of the
// file it replaces, or 0644. When fill or any step fails, the temporary file
// is removed and path is left as it was.
//
// The temporary file is called ".NAME.srtool-tmp-PID-RANDOM" (NAME is
// path's base name, PID this process). If the process is killed before the
// rename (SIGKILL, power loss) that file stays behind; the next Write of the
// same path removes every such file of NAME whose PID is no longer running
// (and temporary files ".NAME.tmpDIGITS" of older srtool versions that are
// more than an hour old). Files of live processes are left alone.
func Write(path string, fill func(io.Writer) error) error {
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
	if d, err := os.Open(dir); err == nil { // make the rename durable where the OS allows
		d.Sync()
		d.Close()
	}
	return nil
}

// legacyTempAge is how old a temporary file of an older srtool version
// (".NAME.tmpDIGITS", no PID to check) must be before it counts as stale.
const legacyTempAge = time.Hour

// removeStaleTemps deletes, best effort, the temporary files that earlier
// writes of dir/base left behind (see Write).
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
