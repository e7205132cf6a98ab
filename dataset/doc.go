// Package dataset loads labelled image classification data into memory as
// float32 tensors for srtool's attacks, estimators and fine-tuning.
//
// A Dataset holds N images in NCHW layout (N×C×H×W, C order) with pixel
// values in [0,1] — the units in which srtool states every ε — and one
// int64 label per image in [0, Classes). Integer pixels p become p/255
// computed in float32, exactly as torchvision's ToTensor does, so a model
// sees the same numbers as in PyTorch.
//
// Sources are named by a spec string (see ParseSpec):
//
//	cifar10:DIR        official binary batches: data_batch_1.bin … data_batch_5.bin, test_batch.bin
//	cifar100:DIR       official binary files train.bin, test.bin (fine labels)
//	mnist:DIR          IDX files train-images-idx3-ubyte, t10k-labels-idx1-ubyte … (gzipped or not)
//	fashion-mnist:DIR  the same layout as mnist (Debian: /usr/share/datasets/fashion-mnist)
//	npz:FILE           arrays x (uint8 0–255 or float 0–1; NCHW, NHWC or NHW) and y (integers)
//	npy:X.npy,Y.npy    the same arrays as two .npy files
//	folder:DIR         one sub-folder of PNG/JPEG images per class, classes in sorted name order
//
// Options choose the split ("test" unless told otherwise; only CIFAR and
// MNIST-style sources hold two), and a window of samples (Offset, N) so that
// a slice of a large set is decoded without converting the rest. Float
// pixels outside [0,1] are an error unless Options.AllowUnnormalized is set,
// because a model that expects normalized input is given its mean and std
// elsewhere (srtool prepends them to the graph).
//
// Batches iterates over a Dataset in fixed or shuffled order with optional
// training augmentation (random crop with zero padding, horizontal flip);
// every random choice comes from an explicit seed and epoch number, so a run
// can be repeated or resumed exactly.
//
// Loaders return errors that name the file and what is wrong with it
// (truncated record, bad magic number, label out of range, mismatched
// counts); they do not panic on malformed input.
package dataset
