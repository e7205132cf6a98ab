package arch_test

import (
	"fmt"

	"github.com/semirobust/srtool/arch"
)

func ExampleBuild() {
	m, err := arch.Build("resnet-small", arch.Config{In: [3]int{1, 28, 28}, Width: 8, Seed: 1})
	if err != nil {
		panic(err)
	}
	g := m.Graph()
	fmt.Println(g.GetInput()[0].GetName(), "→", g.GetOutput()[0].GetName())
	for _, t := range g.GetInitializer()[:6] {
		fmt.Println(t.GetName(), t.GetDims())
	}
	// Output:
	// input → logits
	// conv1.weight [8 1 3 3]
	// bn1.weight [8]
	// bn1.bias [8]
	// bn1.running_mean [8]
	// bn1.running_var [8]
	// layer1.0.conv1.weight [8 8 3 3]
}
