// Package npy reads and writes NumPy .npy arrays and .npz archives.
//
// Arrays are little- or big-endian, C order (Fortran order is read and
// converted), of dtype bool, uint8, int8, int16, int32, int64, uint16, uint32,
// uint64, float16, float32 or float64. Every array is exposed as an *Array
// that keeps its original dtype and shape and converts on demand to float32,
// float64 or int64. Writers produce version 1.0 headers (2.0 when a header
// would not fit in 64 KiB). Format reference:
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// Hostile files: a header's shape is checked, overflow-safe, against the
// bytes the file (or zip entry) holds and a 128 GiB limit before the data is
// allocated; .npz entry sizes are checked against the archive
// (CheckZipEntry), so a lying size or a zip bomb costs no more than the
// archive really expands to; files must be regular (onnxio.OpenRegular).
// Writes are atomic (internal/atomicfile).
package npy
