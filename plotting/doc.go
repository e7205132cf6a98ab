// Package plotting writes the PNG figures srtool's reports link to: line
// plots of series over epochs, K or layer pairs, scatter plots of unordered
// points and heat maps of layer-by-layer matrices. Every file is written
// atomically (atomicfile.WriteFile), so an interrupted run never leaves a
// half-written image.
package plotting
