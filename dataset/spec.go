package dataset

import (
	"fmt"
	"strings"
)

// Spec names a data source, as written on the command line.
type Spec struct {
	// Format is one of cifar10, cifar100, mnist, fashion-mnist, npz, npy, folder.
	Format string `json:"format"`
	// Path is the folder or file; for npy, the file of images.
	Path string `json:"path"`
	// Labels is, for npy only, the file of labels.
	Labels string `json:"labels,omitempty"`
}

// specForms lists the accepted forms, for error messages.
const specForms = "cifar10:DIR, cifar100:DIR, mnist:DIR, fashion-mnist:DIR, npz:FILE, npy:X.npy,Y.npy or folder:DIR"

// ParseSpec parses a data spec such as "cifar10:/data/cifar-10-batches-bin",
// "npz:adv.npz" or "npy:x.npy,y.npy". The format is case-insensitive and
// "fmnist" is accepted for "fashion-mnist". Paths are not checked here.
func ParseSpec(s string) (Spec, error) {
	format, path, ok := strings.Cut(s, ":")
	if !ok {
		return Spec{}, fmt.Errorf("data spec %q has no format; want %s", s, specForms)
	}
	format = strings.ToLower(strings.TrimSpace(format))
	if format == "fmnist" || format == "fashion_mnist" || format == "fashionmnist" {
		format = "fashion-mnist"
	}
	sp := Spec{Format: format, Path: path}
	switch format {
	case "cifar10", "cifar100", "mnist", "fashion-mnist", "npz", "folder":
	case "npy":
		x, y, ok := strings.Cut(path, ",")
		if !ok || x == "" || y == "" {
			return Spec{}, fmt.Errorf("data spec %q: npy wants two files, npy:X.npy,Y.npy", s)
		}
		sp.Path, sp.Labels = x, y
	default:
		return Spec{}, fmt.Errorf("data spec %q: unknown format %q; want %s", s, format, specForms)
	}
	if sp.Path == "" {
		return Spec{}, fmt.Errorf("data spec %q has no path; want %s", s, specForms)
	}
	return sp, nil
}

// String returns the spec in the form ParseSpec reads.
func (s Spec) String() string {
	if s.Format == "npy" {
		return "npy:" + s.Path + "," + s.Labels
	}
	return s.Format + ":" + s.Path
}

// Load reads the data s names.
func (s Spec) Load(opt Options) (*Dataset, error) {
	switch s.Format {
	case "cifar10":
		return LoadCIFAR10(s.Path, opt)
	case "cifar100":
		return LoadCIFAR100(s.Path, opt)
	case "mnist":
		return LoadMNIST(s.Path, opt)
	case "fashion-mnist":
		return LoadFashionMNIST(s.Path, opt)
	case "npz":
		return LoadNPZ(s.Path, opt)
	case "npy":
		return LoadNPY(s.Path, s.Labels, opt)
	case "folder":
		return LoadFolder(s.Path, opt)
	}
	return nil, fmt.Errorf("data spec %q: unknown format %q; want %s", s.String(), s.Format, specForms)
}

// Load parses spec and reads the data it names.
func Load(spec string, opt Options) (*Dataset, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return s.Load(opt)
}
