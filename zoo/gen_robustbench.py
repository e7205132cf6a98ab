"""Regenerates zoo/robustbench.json, srtool's table of RobustBench models.

    python3 zoo/gen_robustbench.py /path/to/robustbench [--check]

The argument is a git checkout of github.com/RobustBench/robustbench; the
table records its commit. Plain Python 3 (ast, json, subprocess); nothing
is imported from RobustBench and no model is built or downloaded.

What it does:

* parses robustbench/model_zoo/cifar10.py and cifar100.py with ``ast`` and
  walks the ``linf``, ``l2`` and ``common_corruptions`` dictionaries;
* resolves each entry's ``'model'`` (a lambda calling a constructor, or a
  subclass defined in the same file) to one of srtool's architectures
  (arch.Build names) — only where the function is exactly one srtool builds:
    - ``WideResNet(depth=D, widen_factor=K, num_classes=N, sub_block1=…)``
      with ``bias_last`` true -> ``wrn-D-K`` (``sub_block1`` recorded: its
      tensors are in the checkpoint but never used by forward);
    - ``ResNet18()`` or ``ResNet(BasicBlock, [2, 2, 2, 2])`` -> ``resnet18``;
    - ``PreActResNet(PreActBlock, [2, 2, 2, 2])`` or ``PreActResNet18()``
      -> ``preact-resnet18``; ``PreActResNet(PreActBlockV2, [2, 2, 2, 2],
      bn_before_fc=True)`` or ``PreActResNet(PreActBlock, …,
      bn_before_fc=True, out_shortcut=True)`` -> ``preact-resnet18-bn``;
  a subclass is accepted when its ``__init__`` only calls the base's
  ``__init__`` and registers ``mu``/``sigma`` buffers, and its ``forward``
  only normalises ``x`` — ``(x - self.mu) / self.sigma`` (normalisation from
  the buffers, which a checkpoint may carry) or ``2. * x - 1.`` (the fixed
  mean 0.5, std 0.5) — before ``return super().forward(x)``;
* takes the numbers from model_info/<dataset>/<threat>/<name>.json;
* lists every other entry under "excluded" with the reason.

With --check it compares instead of writing (exit 1 on a difference).
"""
import ast
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "robustbench.json")

ZOO_FILES = {"cifar10": "robustbench/model_zoo/cifar10.py", "cifar100": "robustbench/model_zoo/cifar100.py"}
CLASSES = {"cifar10": 10, "cifar100": 100}
THREATS = [("linf", "Linf"), ("l2", "L2"), ("common_corruptions", "corruptions")]

# Signatures (parameter names and defaults) of the RobustBench constructors
# srtool maps, from robustbench/model_zoo/architectures/{wide_resnet,resnet}.py.
SIGNATURES = {
    "WideResNet": [("depth", 28), ("num_classes", 10), ("widen_factor", 10), ("sub_block1", False),
                   ("dropRate", 0.0), ("bias_last", True)],
    "PreActResNet": [("block", None), ("num_blocks", None), ("num_classes", 10), ("bn_before_fc", False),
                     ("out_shortcut", False)],
    "ResNet": [("block", None), ("num_blocks", None), ("num_classes", 10)],
    "ResNet18": [],
    "PreActResNet18": [],
}


class Unsupported(Exception):
    pass


class Sym(str):
    """A name that is not a literal (a block class such as PreActBlockV2)."""


def evaluate(node, env):
    """Evaluates a literal expression, with names looked up in env."""
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        return Sym(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [evaluate(e, env) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -evaluate(node.operand, env)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise Unsupported("argument %s is not a literal" % ast.unparse(node))


def bind(fname, call, env):
    sig = SIGNATURES[fname]
    args = dict(sig)
    names = [n for n, _ in sig]
    if len(call.args) > len(names):
        raise Unsupported("%s: too many arguments" % fname)
    for i, a in enumerate(call.args):
        args[names[i]] = evaluate(a, env)
    for kw in call.keywords:
        if kw.arg not in args:
            raise Unsupported("%s: unknown argument %s" % (fname, kw.arg))
        args[kw.arg] = evaluate(kw.value, env)
    return args


def constructor(call, env):
    """Maps a constructor call to (arch, classes, extra, definition)."""
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise Unsupported("constructor %s" % ast.unparse(call))
    f = call.func.id
    if f not in SIGNATURES:
        raise Unsupported("architecture %s" % f)
    a = bind(f, call, env)
    if f == "WideResNet":
        d, k = a["depth"], a["widen_factor"]
        if not a["bias_last"]:
            raise Unsupported("WideResNet without a final bias")
        if (d - 4) % 6 != 0:
            raise Unsupported("WideResNet depth %s" % d)
        return "wrn-%d-%d" % (d, k), a["num_classes"], {"sub_block1": bool(a["sub_block1"])}
    if f == "ResNet18":
        return "resnet18", 10, {}
    if f == "PreActResNet18":
        return "preact-resnet18", 10, {}
    if a["num_blocks"] != [2, 2, 2, 2]:
        raise Unsupported("%s with blocks %s" % (f, a["num_blocks"]))
    if f == "ResNet":
        if a["block"] != "BasicBlock":
            raise Unsupported("ResNet with %s blocks" % a["block"])
        return "resnet18", a["num_classes"], {}
    # PreActResNet
    block, bn, out_sc = a["block"], a["bn_before_fc"], a["out_shortcut"]
    v2 = block == "PreActBlockV2" or (block == "PreActBlock" and out_sc)
    if block not in ("PreActBlock", "PreActBlockV2"):
        raise Unsupported("PreActResNet with %s blocks" % block)
    if v2 and bn:
        return "preact-resnet18-bn", a["num_classes"], {}
    if not v2 and not bn:
        return "preact-resnet18", a["num_classes"], {}
    raise Unsupported("PreActResNet with %s, bn_before_fc=%s, out_shortcut=%s" % (block, bn, out_sc))


def tensor_values(node):
    """torch.tensor([...]).view(1, 3, 1, 1) or torch.tensor([v] * 3).view(...)."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "view"):
        node = node.func.value
    if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.tensor" and len(node.args) == 1):
        raise Unsupported("buffer %s" % ast.unparse(node))
    arg = node.args[0]
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult):
        vals = ast.literal_eval(arg.left) * ast.literal_eval(arg.right)
    else:
        vals = ast.literal_eval(arg)
    if len(vals) != 3:
        raise Unsupported("buffer with %d values" % len(vals))
    return [float(v) for v in vals]


def subclass(cls, classes_in_file):
    """Maps a subclass of a supported constructor to (arch, classes, extra, normalization)."""
    if len(cls.bases) != 1 or not isinstance(cls.bases[0], ast.Name) or cls.bases[0].id not in SIGNATURES:
        raise Unsupported("class %s(%s)" % (cls.name, ", ".join(ast.unparse(b) for b in cls.bases)))
    base = cls.bases[0].id
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    if set(methods) - {"__init__", "forward"}:
        raise Unsupported("class %s defines %s" % (cls.name, sorted(set(methods) - {"__init__", "forward"})))
    init = methods["__init__"]
    env = {}
    params = init.args.args[1:]
    defaults = init.args.defaults
    for p, dflt in zip(params[len(params) - len(defaults):], defaults):
        env[p.arg] = ast.literal_eval(dflt)
    if len(params) != len(defaults):
        raise Unsupported("class %s: __init__ needs arguments" % cls.name)
    result, buffers = None, {}
    for st in init.body:
        call = st.value if isinstance(st, ast.Expr) else None
        if call is None or not isinstance(call, ast.Call):
            if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
                continue  # docstring
            raise Unsupported("class %s: __init__ statement %s" % (cls.name, ast.unparse(st)))
        fn = ast.unparse(call.func)
        if fn.endswith(".__init__") and fn.startswith("super("):
            sup = ast.Call(func=ast.Name(id=base, ctx=ast.Load()), args=call.args, keywords=call.keywords)
            result = constructor(sup, env)
            bound = bind(base, sup, env)
            always = {"depth", "widen_factor", "block", "num_blocks"}
            shown = ", ".join("%s=%s" % (k, v) for k, v in bound.items()
                              if k in always or dict(SIGNATURES[base])[k] != v)
            super_call = "%s(%s)" % (base, shown)
        elif fn == "self.register_buffer":
            name = ast.literal_eval(call.args[0])
            buffers[name] = tensor_values(call.args[1])
        else:
            raise Unsupported("class %s: __init__ calls %s" % (cls.name, fn))
    if result is None:
        raise Unsupported("class %s does not call its base's __init__" % cls.name)
    if set(buffers) - {"mu", "sigma"}:
        raise Unsupported("class %s registers %s" % (cls.name, sorted(buffers)))
    norm = None
    fwd = methods.get("forward")
    if fwd is not None:
        body = [ast.unparse(s) for s in fwd.body]
        if len(body) != 2 or not body[1].startswith("return super(") or not body[1].endswith(".forward(x)"):
            raise Unsupported("class %s: forward is not a fixed normalisation before the base's forward (%s …)" % (cls.name, body[0]))
        if body[0] == "x = (x - self.mu) / self.sigma" and set(buffers) == {"mu", "sigma"}:
            norm = {"mean": buffers["mu"], "std": buffers["sigma"], "buffers": True,
                    "forward": "(x - mu) / sigma"}
        elif body[0] == "x = 2.0 * x - 1.0" and not buffers:
            # (x - 0.5) / 0.5 rounds exactly as 2x - 1 in float32: both scale
            # a once-rounded difference by a power of two.
            norm = {"mean": [0.5] * 3, "std": [0.5] * 3, "buffers": False, "forward": "2 * x - 1"}
        else:
            raise Unsupported("class %s: forward normalises as %r" % (cls.name, body[0]))
    elif buffers:
        raise Unsupported("class %s registers buffers its forward does not use" % cls.name)
    arch, classes, extra = result
    definition = "%s: %s" % (cls.name, super_call)
    if norm is not None:
        definition += ", forward normalises x as " + norm["forward"]
    return arch, classes, extra, norm, definition


def zoo_dicts(tree):
    out = {}
    for st in tree.body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            name = st.targets[0].id
            if name in dict(THREATS):
                entries = []
                lst = st.value.args[0]
                for el in lst.elts:
                    key = ast.literal_eval(el.elts[0])
                    d = el.elts[1]
                    fields = {ast.literal_eval(k): v for k, v in zip(d.keys, d.values)}
                    entries.append((key, fields["model"], fields.get("gdrive_id")))
                out[name] = entries
    return out


def resolve(model, classes_in_file):
    if isinstance(model, ast.Lambda):
        arch, classes, extra = constructor(model.body, {})
        return arch, classes, extra, None, ast.unparse(model.body)
    if isinstance(model, ast.Name):
        if model.id in classes_in_file:
            return subclass(classes_in_file[model.id], classes_in_file)
        if model.id in SIGNATURES:
            arch, classes, extra = constructor(ast.Call(func=model, args=[], keywords=[]), {})
            return arch, classes, extra, None, model.id + "()"
    raise Unsupported("model %s" % ast.unparse(model))


def number(s):
    if s is None or s == "":
        return None
    return float(s)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True, text=True).stdout.strip()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    repo = args[0]
    commit = git(repo, "rev-parse", "HEAD")
    date = git(repo, "log", "-1", "--format=%cs", "HEAD")

    def read(path):
        return git(repo, "show", "HEAD:" + path)

    version = None
    for line in read("setup.py").splitlines():
        line = line.strip()
        if line.startswith("version="):
            version = line.split("=", 1)[1].strip(" ,\"'")
    models, excluded = [], []
    for dataset, path in ZOO_FILES.items():
        tree = ast.parse(read(path))
        classes_in_file = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
        dicts = zoo_dicts(tree)
        for var, threat in THREATS:
            for name, model, gdrive in dicts.get(var, []):
                mid = "%s/%s/%s" % (dataset, threat, name)
                try:
                    info = json.loads(read("model_info/%s/%s/%s.json" % (dataset, threat, name)))
                except subprocess.CalledProcessError:
                    info = None
                try:
                    if isinstance(gdrive, ast.List):
                        raise Unsupported("an ensemble of %d checkpoints" % len(gdrive.elts))
                    if gdrive is None or (isinstance(gdrive, ast.Constant) and gdrive.value is None):
                        raise Unsupported("a timm model, not a checkpoint")
                    arch, classes, extra, norm, definition = resolve(model, classes_in_file)
                except Unsupported as e:
                    excluded.append({"id": mid, "definition": ast.unparse(model), "reason": str(e)})
                    continue
                if classes != CLASSES[dataset]:
                    raise SystemExit("%s: %d classes on %s" % (mid, classes, dataset))
                if info is None:
                    raise SystemExit("%s: no model_info JSON" % mid)
                e = {
                    "id": mid,
                    "name": name,
                    "dataset": dataset,
                    "threat_model": threat,
                    "eps": info.get("eps"),
                    "arch": arch,
                    "classes": classes,
                    "robustbench_architecture": info.get("architecture"),
                    "definition": definition,
                }
                e.update(extra)
                e["normalization"] = norm
                e["clean_acc"] = number(info.get("clean_acc"))
                if threat == "corruptions":
                    e["corruptions_acc"] = number(info.get("corruptions_acc"))
                else:
                    e["autoattack_acc"] = number(info.get("autoattack_acc"))
                e["additional_data"] = bool(info.get("additional_data"))
                if info.get("unreliable"):
                    e["unreliable"] = True
                if name in ("Andriushchenko2020Understanding",) or name.startswith("Kireev2021Effectiveness"):
                    # robustbench/utils.py load_model: checkpoint = checkpoint['last']
                    e["nested"] = "last"
                models.append(e)
    table = {
        "source": {
            "repository": "https://github.com/RobustBench/robustbench",
            "commit": commit,
            "commit_date": date,
            "version": version,
            "read": ["robustbench/model_zoo/cifar10.py", "robustbench/model_zoo/cifar100.py",
                     "robustbench/model_zoo/architectures/wide_resnet.py",
                     "robustbench/model_zoo/architectures/resnet.py", "robustbench/utils.py",
                     "model_info/<dataset>/<threat>/<name>.json"],
            "generator": "zoo/gen_robustbench.py",
        },
        "models": models,
        "excluded": excluded,
    }
    text = json.dumps(table, indent=1, ensure_ascii=False) + "\n"
    if check:
        with open(OUT) as f:
            if f.read() != text:
                sys.exit("%s differs from what %s gives" % (OUT, repo))
        print("%s is up to date (%d models, %d excluded)" % (OUT, len(models), len(excluded)))
        return
    with open(OUT, "w") as f:
        f.write(text)
    print("%s: %d models, %d excluded, RobustBench %s (%s)" % (OUT, len(models), len(excluded), commit[:12], date))


if __name__ == "__main__":
    main()
