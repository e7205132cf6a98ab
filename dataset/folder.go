package dataset

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder for image.Decode
	_ "image/png"  // register the PNG decoder for image.Decode
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
)

// LoadFolder reads images arranged like torchvision's ImageFolder: dir holds
// one sub-folder per class, classes numbered in sorted name order, and each
// class folder holds PNG or JPEG files (.png, .jpg, .jpeg in any case),
// read in sorted name order. Hidden files and folders are skipped. Every
// image must have the same size. Images are 1-channel when every one is
// grayscale and RGB otherwise (alpha is dropped, as PIL's convert("RGB")
// does); 16-bit images are scaled by 1/65535. Go's JPEG decoder may differ
// from libjpeg's by a level in some pixels.
//
// Offset and N select from the samples in that order (class by class), and
// only the selected images are decoded.
//
// Every image's header is read first (image.DecodeConfig) and checked before
// any pixel is decoded: at most MaxImagePixels pixels per image, no more
// than the file's bytes can encode, and at most MaxBytes of float32 pixels
// for the selected images, so a header that claims 10⁶×10⁶ pixels is one
// clear error, not a huge allocation. Image
// files must be regular files (a named pipe is refused, not waited on).
func LoadFolder(dir string, opt Options) (*Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	var classes []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			classes = append(classes, e.Name())
		} else if isImage(e.Name()) {
			return nil, fmt.Errorf("folder %s: image %s lies outside a class folder; want one sub-folder of images per class", dir, e.Name())
		}
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("folder %s: no class sub-folders", dir)
	}
	slices.Sort(classes)
	if opt.Classes > 0 && opt.Classes != len(classes) {
		return nil, fmt.Errorf("folder %s: %d class sub-folders, but %d classes were asked for", dir, len(classes), opt.Classes)
	}
	var files []string
	var labels []int64
	for ci, class := range classes {
		ents, err := os.ReadDir(filepath.Join(dir, class))
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		var names []string
		for _, e := range ents {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && isImage(e.Name()) {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		for _, n := range names {
			files = append(files, filepath.Join(dir, class, n))
			labels = append(labels, int64(ci))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("folder %s: %w: no .png, .jpg or .jpeg files in its %d class folders", dir, errNoSamples, len(classes))
	}

	// Headers first: sizes and colour models of every image, cheaply.
	gray := true
	var w, h int
	for i, p := range files {
		cfg, err := decodeConfig(p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			w, h = cfg.Width, cfg.Height
		} else if cfg.Width != w || cfg.Height != h {
			return nil, fmt.Errorf("%s: image is %d×%d (W×H) but %s is %d×%d; all images must have the same size", p, cfg.Width, cfg.Height, files[0], w, h)
		}
		if cfg.ColorModel != color.GrayModel && cfg.ColorModel != color.Gray16Model {
			gray = false
		}
	}
	c := 3
	if gray {
		c = 1
	}
	lo, hi, err := opt.window(len(files))
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", dir, err)
	}
	if err := checkAlloc(hi-lo, c, h, w); err != nil {
		return nil, fmt.Errorf("folder %s: %w", dir, err)
	}
	dim := c * h * w
	d := &Dataset{
		X: make([]float32, (hi-lo)*dim), Y: labels[lo:hi:hi],
		C: c, H: h, W: w, Classes: len(classes), ClassNames: classes,
		Name: "folder:" + dir,
	}
	for i := lo; i < hi; i++ {
		img, err := decodeImage(files[i])
		if err != nil {
			return nil, err
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("%s: image decodes to %d×%d, its header says %d×%d", files[i], b.Dx(), b.Dy(), w, h)
		}
		toCHW(img, c, d.X[(i-lo)*dim:(i-lo+1)*dim])
	}
	return d, nil
}

func isImage(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// maxPixelsPerByte is the most pixels one byte of a PNG or JPEG file can
// hold: a 1-bit PNG at DEFLATE's best ratio (1032:1, 8 pixels a byte); a
// JPEG needs at least one bit per 8×8 block, 512 pixels a byte.
const maxPixelsPerByte = 8 * npy.MaxDeflateRatio

// decodeConfig reads the header of the image at path and checks its size
// against MaxImagePixels and against what the file's bytes can hold.
func decodeConfig(path string) (cfg image.Config, err error) {
	f, size, err := onnxio.OpenRegular(path)
	if err != nil {
		return image.Config{}, err
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			cfg, err = image.Config{}, fmt.Errorf("%s: decoder failed: %v", path, r)
		}
	}()
	cfg, _, err = image.DecodeConfig(f)
	if err != nil {
		return image.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkImageSize(cfg.Width, cfg.Height); err != nil {
		return image.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixelsPerByte*size+1<<16 {
		return image.Config{}, fmt.Errorf("%s: image header says %d×%d (W×H) pixels, more than a %d-byte file can hold", path, cfg.Width, cfg.Height, size)
	}
	return cfg, nil
}

// checkImageSize refuses images without pixels and images of more than
// MaxImagePixels pixels, overflow-safe.
func checkImageSize(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image is %d×%d (W×H): it has no pixels", w, h)
	}
	if w > MaxImagePixels/h {
		return fmt.Errorf("image header says %d×%d (W×H) pixels, more than the limit of %d", w, h, MaxImagePixels)
	}
	return nil
}

func decodeImage(path string) (img image.Image, err error) {
	f, _, err := onnxio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The standard decoders return errors for malformed input; this guards
	// the never-panic promise against a decoder bug all the same.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%s: decoder failed: %v", path, r)
		}
	}()
	img, _, err = image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// toCHW writes img's pixels into dst (c planes of H×W) in [0,1]: the gray
// level when c is 1, else red, green and blue without alpha.
func toCHW(img image.Image, c int, dst []float32) {
	b := img.Bounds()
	hw := b.Dx() * b.Dy()
	switch im := img.(type) {
	case *image.Gray:
		if c == 1 {
			for y := range b.Dy() {
				row := im.Pix[y*im.Stride : y*im.Stride+b.Dx()]
				for x, p := range row {
					dst[y*b.Dx()+x] = byteToUnit[p]
				}
			}
			return
		}
	case *image.NRGBA:
		if c == 3 {
			for y := range b.Dy() {
				row := im.Pix[y*im.Stride : y*im.Stride+4*b.Dx()]
				for x := range b.Dx() {
					k := y*b.Dx() + x
					dst[k] = byteToUnit[row[4*x]]
					dst[hw+k] = byteToUnit[row[4*x+1]]
					dst[2*hw+k] = byteToUnit[row[4*x+2]]
				}
			}
			return
		}
	}
	deep := false
	switch img.ColorModel() {
	case color.Gray16Model, color.RGBA64Model, color.NRGBA64Model:
		deep = true
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			k := y*b.Dx() + x
			px := img.At(b.Min.X+x, b.Min.Y+y)
			switch {
			case c == 1 && deep:
				dst[k] = float32(color.Gray16Model.Convert(px).(color.Gray16).Y) / 65535
			case c == 1:
				dst[k] = byteToUnit[color.GrayModel.Convert(px).(color.Gray).Y]
			case deep:
				p := color.NRGBA64Model.Convert(px).(color.NRGBA64)
				dst[k], dst[hw+k], dst[2*hw+k] = float32(p.R)/65535, float32(p.G)/65535, float32(p.B)/65535
			default:
				p := color.NRGBAModel.Convert(px).(color.NRGBA)
				dst[k], dst[hw+k], dst[2*hw+k] = byteToUnit[p.R], byteToUnit[p.G], byteToUnit[p.B]
			}
		}
	}
}
