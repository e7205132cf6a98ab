package autodiff

// SetDWStrategy forces the weight-gradient layout (-1 = automatic) for
// measurements; it returns a function restoring the previous value.
func SetDWStrategy(v int) func() {
	old := dwForce
	dwForce = v
	return func() { dwForce = old }
}
