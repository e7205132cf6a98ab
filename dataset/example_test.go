package dataset_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
)

func Example() {
	dir, err := os.MkdirTemp("", "dataset-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Six 1×2×2 images, as numpy.savez(path, x=uint8 array, y=int64 array) writes them.
	path := filepath.Join(dir, "tiny.npz")
	x := npy.FromUint8([]uint8{
		0, 255, 0, 255, 51, 51, 51, 51, 255, 0, 0, 0,
		0, 0, 0, 0, 102, 0, 0, 0, 0, 0, 0, 255}, 6, 1, 2, 2)
	y := npy.FromInt64([]int64{0, 1, 2, 0, 1, 2}, 6)
	if err := npy.WriteNPZ(path, map[string]*npy.Array{"x": x, "y": y}); err != nil {
		log.Fatal(err)
	}

	d, err := dataset.Load("npz:"+path, dataset.Options{Offset: 1, N: 4})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d samples of %d×%d×%d, %d classes\n", d.Len(), d.C, d.H, d.W, d.Classes)
	img, label := d.Sample(0)
	fmt.Println(img, label)
	for k, b := range d.Batches(3, dataset.BatchOptions{Shuffle: true, Seed: 1}) {
		fmt.Println("batch", k, "holds samples", b.Index)
	}
	// Output:
	// 4 samples of 1×2×2, 3 classes
	// [0.2 0.2 0.2 0.2] 1
	// batch 0 holds samples [1 2 0]
	// batch 1 holds samples [3]
}
