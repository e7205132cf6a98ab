package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// grayImage is a w×h gray image of generated sample s.
func grayImage(s, w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for j := range w * h {
		img.Pix[j] = pixel(s, j)
	}
	return img
}

// rgbImage is a w×h opaque-colour image of generated sample s, with
// channel planes laid out as pixel(s, ch*w*h + j).
func rgbImage(s, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for j := range w * h {
		for ch := range 3 {
			img.Pix[4*j+ch] = pixel(s, ch*w*h+j)
		}
		img.Pix[4*j+3] = 255
	}
	return img
}

func TestFolderGray(t *testing.T) {
	dir := t.TempDir()
	// Classes "b_cat" < "dog" < "zebra" by name; samples numbered class by
	// class in file-name order.
	layout := []struct {
		class string
		files []string
	}{
		{"b_cat", []string{"1.png", "2.PNG"}},
		{"dog", []string{"a.png"}},
		{"zebra", []string{"x.png", "y.png", "z.png"}},
	}
	s := 0
	var labels []int64
	for ci, c := range layout {
		for _, f := range c.files {
			writeFile(t, filepath.Join(dir, c.class, f), pngBytes(t, grayImage(s, 5, 4)))
			labels = append(labels, int64(ci))
			s++
		}
	}
	writeFile(t, filepath.Join(dir, "dog", "notes.txt"), []byte("skipped"))
	writeFile(t, filepath.Join(dir, "dog", ".hidden.png"), []byte("skipped"))
	writeFile(t, filepath.Join(dir, ".cache", "x.png"), []byte("skipped"))
	writeFile(t, filepath.Join(dir, "README"), []byte("skipped"))

	d, err := Load("folder:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 6 || d.C != 1 || d.H != 4 || d.W != 5 || d.Classes != 3 || strings.Join(d.ClassNames, ",") != "b_cat,dog,zebra" {
		t.Fatalf("Len, C, H, W, Classes, names = %d, %d, %d, %d, %d, %v; want 6, 1, 4, 5, 3, [b_cat dog zebra]", d.Len(), d.C, d.H, d.W, d.Classes, d.ClassNames)
	}
	checkSamples(t, d, 0, func(s int) int64 { return labels[s] })

	w, err := LoadFolder(dir, Options{Offset: 2, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, w, 2, func(s int) int64 { return labels[s] })
}

func TestFolderColour(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a", "0.png"), pngBytes(t, rgbImage(0, 3, 2)))
	// A gray image among colour ones is replicated into three channels.
	writeFile(t, filepath.Join(dir, "b", "1.png"), pngBytes(t, grayImage(1, 3, 2)))
	// A 16-bit image keeps its precision.
	deep := image.NewGray16(image.Rect(0, 0, 3, 2))
	deep.SetGray16(1, 0, color.Gray16{Y: 1000})
	writeFile(t, filepath.Join(dir, "b", "2.png"), pngBytes(t, deep))
	// A translucent pixel keeps its colour; alpha is dropped.
	alpha := rgbImage(3, 3, 2)
	alpha.Pix[3] = 10
	writeFile(t, filepath.Join(dir, "c", "3.png"), pngBytes(t, alpha))

	d, err := LoadFolder(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 4 || d.C != 3 || d.H != 2 || d.W != 3 {
		t.Fatalf("Len, C, H, W = %d, %d, %d, %d; want 4, 3, 2, 3", d.Len(), d.C, d.H, d.W)
	}
	checkSamples(t, d.Subset([]int{0}), 0, func(int) int64 { return 0 })
	checkSamples(t, d.Subset([]int{3}), 3, func(int) int64 { return 2 })
	gray, _ := d.Sample(1)
	for j := range 6 {
		want := float32(pixel(1, j)) / 255
		if gray[j] != want || gray[6+j] != want || gray[12+j] != want {
			t.Fatalf("gray image pixel %d = %v, %v, %v; want %v in every channel", j, gray[j], gray[6+j], gray[12+j], want)
		}
	}
	if x, _ := d.Sample(2); x[1] != float32(1000)/65535 {
		t.Errorf("16-bit pixel = %v; want 1000/65535", x[1])
	}
}

func TestFolderJPEG(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"a/0.jpg", "b/1.JPEG"} {
		img := rgbImage(i, 16, 16)
		for j := range img.Pix { // flat content survives JPEG nearly intact
			if j%4 != 3 {
				img.Pix[j] = byte(100 + i*20)
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), buf.Bytes())
	}
	d, err := LoadFolder(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || d.C != 3 || d.H != 16 || d.W != 16 {
		t.Fatalf("Len, C, H, W = %d, %d, %d, %d; want 2, 3, 16, 16", d.Len(), d.C, d.H, d.W)
	}
	for i := range 2 {
		x, _ := d.Sample(i)
		want := float64(100+i*20) / 255
		for j, v := range x {
			if math.Abs(float64(v)-want) > 2.0/255 {
				t.Fatalf("JPEG sample %d pixel %d = %v; want %v ± 2/255", i, j, v, want)
			}
		}
	}
}

func TestFolderErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string][]byte
		opt   Options
		want  string
	}{
		{"different sizes", map[string][]byte{"a/0.png": pngBytes(t, grayImage(0, 4, 4)), "b/1.png": pngBytes(t, grayImage(0, 4, 5))}, Options{}, "1.png: image is 4×5 (W×H) but"},
		{"corrupt png", map[string][]byte{"a/0.png": []byte("\x89PNG\r\n\x1a\nnot really")}, Options{}, "0.png"},
		{"truncated png", map[string][]byte{"a/0.png": pngBytes(t, grayImage(0, 4, 4))[:60]}, Options{}, "0.png"},
		{"image outside class folders", map[string][]byte{"a/0.png": pngBytes(t, grayImage(0, 4, 4)), "stray.png": pngBytes(t, grayImage(0, 4, 4))}, Options{}, "stray.png lies outside a class folder"},
		{"no images", map[string][]byte{"a/readme.txt": nil}, Options{}, "no .png, .jpg or .jpeg files"},
		{"no classes", map[string][]byte{"readme.txt": nil}, Options{}, "no class sub-folders"},
		{"class count", map[string][]byte{"a/0.png": pngBytes(t, grayImage(0, 4, 4))}, Options{Classes: 10}, "1 class sub-folders, but 10 classes"},
		{"offset beyond", map[string][]byte{"a/0.png": pngBytes(t, grayImage(0, 4, 4))}, Options{Offset: 1}, "offset 1 leaves no samples of 1"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for name, b := range c.files {
			writeFile(t, filepath.Join(dir, name), b)
		}
		_, err := LoadFolder(dir, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v; want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := LoadFolder(filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Error("missing folder: nil error")
	}
}
