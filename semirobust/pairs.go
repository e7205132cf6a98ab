package semirobust

// SelectPairs is the layer pairs of mi's model mode in a model of layers
// weight layers: those of spec (ParsePairs) when it is not "", else the
// pairs of the last k weight layers (TailPairs).
func SelectPairs(spec string, k, layers int) ([][2]int, error) {
	if spec != "" {
		return ParsePairs(spec, layers)
	}
	return TailPairs(layers, k)
}
