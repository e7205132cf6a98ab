// Package arch builds standard image-classifier architectures as ONNX models
// whose initializers carry PyTorch's state_dict names, so that a checkpoint
// trained in PyTorch loads into them by name and a model trained by srtool
// exports back to PyTorch unchanged.
//
// Build(name, cfg) returns an ONNX opset 17 model (IR version 8) with one
// float32 input "input" of shape [batch, C, H, W] (dim_param "batch") and one
// output "logits" of shape [batch, Classes]. Every parameter and every
// BatchNorm buffer (running_mean, running_var) is an initializer named exactly
// as in the reference module's state_dict, in state_dict order;
// num_batches_tracked has no ONNX counterpart and is left out. BatchNorm is
// kept as a BatchNormalization node in inference form (training_mode 0,
// epsilon 1e-5, ONNX momentum 0.9 = 1 − PyTorch's 0.1), so a model is the
// same graph that torch.onnx.export writes with TrainingMode.PRESERVE from an
// eval() module. Conv layers have no bias (the references use bias=False);
// Linear layers are Gemm with transB=1.
//
// Architectures (Names lists them):
//
//   - resnet18: kuangliu/pytorch-cifar ResNet18, BasicBlock [2,2,2,2], base
//     width 64 (conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2},
//     layer{2,3,4}.0.shortcut.{0,1}, linear); 11,173,962 parameters for
//     3×32×32 and 10 classes.
//   - resnet-small: the same ResNet with [1,1,1,1] blocks (13 weight layers),
//     base width 64 unless Config.Width says otherwise (testdata's
//     resnet10_cifar uses 8).
//   - preact-resnet18: RobustBench PreActResNet18() = PreActResNet(PreActBlock,
//     [2,2,2,2]) (conv1, layer{1..4}.{0,1}.{bn1,conv1,bn2,conv2},
//     layer{2,3,4}.0.shortcut.0, linear). The stem conv has no BN, the
//     shortcut conv takes the raw block input, and there is no final BN.
//     This is Wong2020Fast and Andriushchenko2020Understanding.
//   - preact-resnet18-bn: RobustBench PreActResNet(PreActBlockV2, [2,2,2,2],
//     bn_before_fc=True), the variant of every RobustBench model with
//     bn_before_fc (Rice2020Overfitting L2 and CIFAR-100,
//     Kireev2021Effectiveness, Addepalli2021Towards_PARN18). It differs from
//     preact-resnet18 twice: where a block changes shape, its shortcut conv
//     takes the activated input relu(bn1(x)) instead of the raw x
//     (PreActBlockV2, or PreActBlock with out_shortcut=True, which computes
//     the same function), and relu(bn(·)) precedes the pooling, adding bn.*.
//   - wrn-D-K: RobustBench WideResNet(depth=D, widen_factor=K) for any depth
//     D = 6n+4 ≥ 10 and widen factor K ≥ 1, base width 16 unless Config.Width
//     says otherwise (conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2},
//     block{g}.layer.0.convShortcut where widths differ, bn1, fc). wrn-34-10
//     has 46,160,474 and wrn-28-10 36,479,194 parameters.
//
// Config.In[0] replaces the 3 input channels that every reference hard-codes
// in conv1 (e.g. 1 for MNIST-like data), and Config.Width the hard-coded base
// width; with the zero Config each model is the reference module exactly.
// Config.Normalize adds the input normalisation of RobustBench's normalising
// subclasses (Wong2020FastNet, Rice2020OverfittingNetL2, …): the graph
// computes (input − mu) / sigma with initializers "mu" and "sigma" of shape
// [1, C, 1, 1], first in the state_dict as in those subclasses, so the
// model takes pixels in [0,1].
//
// Pooling head. The references end with F.avg_pool2d(out, k) (k = 4 for the
// ResNets, 8 for the WRNs), which on 32×32 inputs pools the whole last 4×4 or
// 8×8 map. When the last map is k×k, Build emits the same AveragePool
// (kernel k, stride k); for any other input size it emits GlobalAveragePool,
// which is what the reference would need to accept that size (avg_pool2d(k)
// would leave a map larger than 1×1 and break the Linear layer, or fail).
// Flatten(axis 1) then feeds the Gemm.
//
// Initialisation, seeded by Config.Seed (a PCG generator from math/rand/v2,
// drawn in state_dict order; the values are not bit-equal to torch's):
//
//   - resnet18, resnet-small, preact-resnet18(-bn): PyTorch's defaults, since
//     the reference code does not override them. Conv2d and Linear weights
//     follow kaiming_uniform_(a=√5), i.e. U(−1/√fan_in, 1/√fan_in) with
//     fan_in = in_channels·kh·kw (in_features for Linear); the Linear bias is
//     U(−1/√fan_in, 1/√fan_in) too. BN weight 1, bias 0, running_mean 0,
//     running_var 1.
//   - wrn-D-K: RobustBench's override. Conv weights N(0, 2/fan_out) with
//     fan_out = out_channels·kh·kw (kaiming_normal_, mode fan_out, relu);
//     BN weight 1, bias 0, running_mean 0, running_var 1; Linear weight keeps
//     PyTorch's default U(−1/√fan_in, 1/√fan_in) and its bias is 0.
//   - mu and sigma (Config.Normalize) hold the given values; they draw
//     nothing from the generator, so the other weights do not depend on them.
//
// Nothing in this package prints.
package arch
