// Package checkpoint moves weights between PyTorch files and ONNX models by
// PyTorch state_dict name.
//
// Reading: ReadPyTorch reads torch.save checkpoints — the zip format of
// torch ≥ 1.6 (<name>/data.pkl plus one record per storage under
// <name>/data/) and the legacy pickle format (_use_new_zipfile_serialization
// =False, e.g. RobustBench's natural.pt.tar) — with float32, float16,
// bfloat16, float64 and integer storages, any strides and storage offsets
// (views are copied to C order). The pickle is decoded by
// github.com/nlpodyssey/gopickle's unpickler with srtool's own torch hooks;
// no Python code runs, classes the checkpoint names are stood in for by
// inert objects, and counted pickle arguments are checked against the input
// before anything is allocated. The state_dict may be the whole object or
// nested under "state_dict", "model_state_dict", "model" or "net"
// (WrapperKeys); "module." prefixes (DataParallel) are stripped and
// num_batches_tracked counters dropped (Normalize). TorchScript archives
// (torch.jit.save) and pickled whole modules are not read.
//
// Load reads either format (told apart by content) and also returns every
// entry it left out (Checkpoint.Ignored): non-tensor entries of the
// state_dict, entries beside it ("epoch", "optimizer") and the
// num_batches_tracked counters, so nothing a file holds is dropped without
// a word. Read is Load without that list.
//
// Hostile files: inputs must be regular files of at most MaxFileBytes; zip
// records are checked against the archive before they are read
// (npy.CheckZipEntry: a stored record declares what it holds, a deflated
// one no more than DEFLATE can produce), data.pkl is at most 256 MiB,
// storage element counts, offsets, sizes and strides are checked,
// overflow-safe, against the storage, and all tensors of a file together
// may copy at most 4 times the file's size (+64 MiB) out of their storages,
// so views that overlap many times cannot turn a small file into a huge
// allocation.
//
// ReadSafetensors, DecodeSafetensors, EncodeSafetensors and WriteSafetensors
// implement the safetensors format (huggingface/safetensors, "Format"):
// an 8-byte little-endian header length, a JSON header, little-endian
// C-order data covered exactly by the tensors' data_offsets. Writes are
// atomic. Read picks the format from the file's content. The header codec
// on its own (EncodeSafetensorsHeader, ReadSafetensorsHeader) serves writers
// and readers that stream the data, such as finetune's checkpoints; it is
// the one place safetensors headers are made and checked.
//
// A Tensor keeps the file's element type (DType, spelled as in safetensors)
// and its raw little-endian bytes; Float32s and Int64s decode them.
//
// Mapping: Export lists a model's parameters by PyTorch name and Import
// sets them, strictly by default (*MismatchError lists missing, unexpected
// and mis-shaped names). The names are those of the TorchScript exporter
// run with training=TrainingMode.PRESERVE: float32 initializers keep their
// state_dict names, and the exporter's de-duplication turns repeated values
// into Identity nodes whose outputs carry the other names; Import unties
// such a pair when the checkpoint gives the two names different values.
// Exporter-generated names (onnx::…) and constants read only as shapes,
// axes or pads are not parameters. A model exported with BatchNorm folded
// into Conv (the default eval export) has no state_dict names for its
// weights: ErrFoldedBN.
//
// Nothing in this package prints, and malformed files give errors, not
// panics.
package checkpoint
