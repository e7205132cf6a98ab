package estimators

// quickselect partially orders a so that a[k] (0-based) has rank k under
// key: Hoare's selection with the middle element as pivot, expected
// O(len(a)). The k-d tree splits its points at the median with it, and
// kthSmallest serves the medians and quantiles of CKA and NOCCO.
func quickselect[E any](a []E, k int, key func(E) float64) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		pv := key(a[(lo+hi)/2])
		i, j := lo, hi
		for i <= j {
			for key(a[i]) < pv {
				i++
			}
			for key(a[j]) > pv {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		if k <= j {
			hi = j
		} else if k >= i {
			lo = i
		} else {
			return
		}
	}
}

// kthSmallest returns the k-th smallest value (1-based) of a, reordering a.
func kthSmallest(a []float64, k int) float64 {
	quickselect(a, k-1, func(v float64) float64 { return v })
	return a[k-1]
}
