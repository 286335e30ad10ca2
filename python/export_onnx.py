#!/usr/bin/env python3
"""Converts a model prunegym exported (pruned_model.pt, masked_model.pt) to ONNX.

A channel-pruned run's pruned_model.pt has the removed channels physically gone; its ONNX file
keeps those smaller shapes, so any ONNX runtime runs the smaller network. The input shape is read
from the run's summary.json (export.input) unless --shape gives it.

usage:
  /usr/bin/python3 python/export_onnx.py runs/channels/pruned_model.pt runs/channels/pruned_model.onnx
  /usr/bin/python3 python/export_onnx.py model.pt model.onnx --shape 1 28 28

After writing, the file is checked with onnx.checker (Debian's python3-onnx) and the weight
shapes of its convolutions and matrix products are compared with the TorchScript model's: a
mismatch is an error. Prints one JSON line: the file, its bytes, the weight shapes and the check.
Needs Debian's python3-torch; python3-onnx for the check (skipped, and said so, without it).
"""

import argparse
import json
import pathlib
import sys



def input_shape(model_path, given):
    """(channels, height, width): --shape, else the "input" prunegym's summary.json beside the model records."""
    if given:
        return tuple(given)
    summary_path = pathlib.Path(model_path).with_name("summary.json")
    try:
        return tuple(json.loads(summary_path.read_text())["export"]["input"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SystemExit(f"error: no --shape given and {summary_path} does not record the input shape "
                         "(export.input): pass --shape CHANNELS HEIGHT WIDTH")


def weight_shapes(module):
    """Shapes of the weights with two or more dimensions (the layers prunegym prunes), sorted."""
    return sorted(list(p.shape) for name, p in module.named_parameters() if name.endswith("weight") and p.dim() >= 2)


def onnx_weight_shapes(model):
    """Shapes of the weight inputs of Conv, Gemm and MatMul nodes, sorted (batch-norm folding keeps them)."""
    from onnx import numpy_helper
    initializers = {i.name: list(numpy_helper.to_array(i).shape) for i in model.graph.initializer}
    shapes = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in initializers:
            shape = initializers[node.input[1]]
            transposed = node.op_type == "MatMul" or any(a.name == "transB" and a.i == 0 for a in node.attribute)
            shapes.append(shape[::-1] if transposed and node.op_type != "Conv" else shape)
    return sorted(shapes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a TorchScript file prunegym wrote (pruned_model.pt or masked_model.pt)")
    parser.add_argument("out", help="the ONNX file to write")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("C", "H", "W"), help="input channels, height, width")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset (default 13)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("error: python3-torch is missing: apt-get install python3-torch")
    if not pathlib.Path(args.model).exists():
        raise SystemExit(f"error: {args.model} does not exist")
    try:
        module = torch.jit.load(args.model).eval()
    except Exception as e:  # a state dict, a pickle, a damaged file
        raise SystemExit(f"error: {args.model} is not a TorchScript module ({str(e).splitlines()[0]}); "
                         "prunegym's pruned_model.pt and masked_model.pt are")
    example = torch.zeros(1, *input_shape(args.model, args.shape))
    import warnings
    warnings.filterwarnings("ignore", message="no signature found")  # scripted modules have none: harmless
    with torch.no_grad():
        module(example)  # a wrong shape fails here, with the module's own message
        torch.onnx.export(module, (example,), args.out, opset_version=args.opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    report = {"file": args.out, "bytes": pathlib.Path(args.out).stat().st_size, "weights": weight_shapes(module)}
    try:
        import onnx
    except ImportError:
        report["check"] = "skipped: python3-onnx is not installed (apt-get install python3-onnx)"
        print(json.dumps(report))
        return 0
    model = onnx.load(args.out)
    onnx.checker.check_model(model)
    found = onnx_weight_shapes(model)
    if found != report["weights"]:
        raise SystemExit(f"error: the ONNX weights {found} differ from the TorchScript weights {report['weights']}")
    report["check"] = f"onnx.checker passed; {len(found)} weight shapes match (onnx {onnx.__version__})"
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
