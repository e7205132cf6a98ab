// Package zoo knows RobustBench's CIFAR-10 and CIFAR-100 model zoo: which
// models srtool can rebuild exactly, with what architecture and input
// normalisation, and how their checkpoints are stored. Import turns such a
// checkpoint into an ONNX model that takes pixels in [0,1].
//
// The table (Models, Lookup) is robustbench.json, embedded at build time and
// written by gen_robustbench.py from a RobustBench checkout — the commit is
// in Source — by reading robustbench/model_zoo/cifar10.py and cifar100.py
// (each entry's constructor) and model_info/<dataset>/<threat>/<name>.json
// (RobustBench's clean and AutoAttack or corruption accuracies, in percent).
// An entry is listed only when its function is one arch.Build builds
// exactly: RobustBench's WideResNet (wrn-D-K), kuangliu's ResNet-18
// (resnet18), PreActResNet-18 with PreActBlock (preact-resnet18) or with
// PreActBlockV2 and bn_before_fc (preact-resnet18-bn), each possibly wrapped
// in a subclass that normalises its input with fixed constants. Every other
// entry (DeepMind WideResNets, ResNet-50s, ensembles, timm models, per-image
// standardisation, …) is in Excluded with the reason.
//
// IDs are "<dataset>/<threat>/<name>", e.g. "cifar10/Linf/Carmon2019Unlabeled",
// the folder layout of RobustBench's model_info and model directory; Lookup
// also takes a bare name when it is unambiguous.
//
// Import applies RobustBench's checkpoint conventions by rule
// (robustbench/utils.py load_model and the architecture code):
//
//   - "module." (DataParallel) and "model." key prefixes are stripped, and
//     a state_dict nested under "state_dict" is found (checkpoint.Read);
//   - WideResNet's sub_block1.* tensors, which RobustBench's
//     WideResNet(sub_block1=True) creates but its forward never calls, are
//     dropped and listed in Report.Dropped;
//   - the mu and sigma buffers of a normalising subclass become the model's
//     input normalisation, (input − mu) / sigma inside the graph (see
//     arch.Normalization). Values the checkpoint carries win over the
//     table's, and the report says when they differ; a checkpoint without
//     them gets the table's, as RobustBench's non-strict load keeps the
//     class's own buffers. A model whose forward computes 2x − 1 gets
//     mean 0.5, std 0.5, which rounds identically in float32;
//   - everything else is strict: a missing tensor, a tensor the
//     architecture does not have (mu and sigma included, for a model that
//     does not normalise) or a different shape refuses the checkpoint with a
//     *MismatchError that lists them all.
//
// Nothing in this package prints or downloads.
package zoo
