package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// lyingPNG returns a valid small PNG whose IHDR claims w×h pixels (CRC
// fixed, so only the size lies).
func lyingPNG(t testing.TB, w, h uint32) []byte {
	b := pngBytes(t, grayImage(0, 4, 3))
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// lyingJPEG returns a valid small JPEG whose SOF header claims w×h pixels.
func lyingJPEG(t testing.TB, w, h uint16) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, grayImage(0, 8, 8), nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// Issue 12: PNGs whose headers claim 10^6 × 10^6 pixels crashed
// LoadFolder (it allocated the pixels the header claimed: terabytes).
func TestFolderLyingHeaders(t *testing.T) {
	cases := []struct {
		name string
		file string
		b    []byte
		want string
	}{
		{"PNG 10^6×10^6", "a.png", lyingPNG(t, 1e6, 1e6), "limit"},
		{"PNG 2^31−1 square", "a.png", lyingPNG(t, 1<<31-1, 1<<31-1), "dimension"},
		{"PNG 10^5×10^3 (over the pixel limit)", "a.png", lyingPNG(t, 1e5, 1e3), "limit"},
		{"JPEG 65535×65535", "a.jpg", lyingJPEG(t, 65535, 65535), "limit"},
		{"JPEG 0 wide", "a.jpg", lyingJPEG(t, 0, 8), "a.jpg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeFile(t, filepath.Join(dir, "cls", c.file), c.b)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := LoadFolder(dir, Options{})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("LoadFolder succeeded; want an error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q; want one naming %s and containing %q", err, p, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Errorf("LoadFolder allocated %d bytes for a %d-byte image", got, len(c.b))
			}
		})
	}
}

// Headers within MaxImagePixels can still lie: 40 files of 82 bytes that
// each claim 8000×8000 pixels asked for 10 GB before any was decoded.
// Each file's size bounds the pixels it may claim, and the folder's total
// is bounded by MaxBytes, both checked before anything is allocated.
func TestFolderPixelsVsFileSize(t *testing.T) {
	dir := t.TempDir()
	for i := range 40 {
		writeFile(t, filepath.Join(dir, "cls", fmt.Sprintf("%02d.png", i)), lyingPNG(t, 8000, 8000))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := LoadFolder(dir, Options{})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "file can hold") {
		t.Errorf("40 small files claiming 8000×8000: err = %v; want a file-size error", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("LoadFolder allocated %d bytes", got)
	}
}

// Honest but highly compressed images (all black, 4096×4096 in 16 kB)
// whose pixels together exceed MaxBytes are refused before decoding; a
// window of them loads.
func TestFolderMaxBytes(t *testing.T) {
	dir := t.TempDir()
	black := pngBytes(t, image.NewGray(image.Rect(0, 0, 4096, 4096)))
	n := MaxBytes/(4096*4096*4) + 1
	for i := range n {
		writeFile(t, filepath.Join(dir, "cls", fmt.Sprintf("%03d.png", i)), black)
	}
	if _, err := LoadFolder(dir, Options{}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("%d black 4096×4096 images: err = %v; want a MaxBytes limit error", n, err)
	}
	if d, err := LoadFolder(dir, Options{N: 2}); err != nil || d.Len() != 2 {
		t.Errorf("a window of 2 of them: %v", err)
	}
}

// An IDX header whose dimensions need more bytes than the file (or the
// gzip stream, at DEFLATE's best ratio) can hold is refused before any
// buffer is allocated for the data.
func TestIDXLyingDims(t *testing.T) {
	claim := idxBytes([]int{1 << 20, 28, 28}, make([]byte, 100)) // 822 MB claimed, 100 held
	for _, c := range []struct {
		name string
		b    []byte
	}{{"plain", claim}, {"gzip", gz(claim)}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), c.b)
			writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), idxBytes([]int{1}, []byte{0}))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := LoadMNIST(dir, Options{})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") {
				t.Fatalf("LoadMNIST = %v; want an error naming the image file", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
				t.Errorf("LoadMNIST allocated %d bytes for a %d-byte file", got, len(c.b))
			}
		})
	}
}
