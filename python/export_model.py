#!/usr/bin/env python3
"""Writes a torchvision classification architecture as TorchScript, ready for prunegym.

The model is adapted to the data: its first convolution takes the data's channels and its
classifier gives the data's classes. Weights are freshly initialised (Debian's torchvision has no
pretrained weights); prunegym pretrains the network (network.pretrain) before pruning it.

usage:
  /usr/bin/python3 python/export_model.py resnet18 models/resnet18.pt --channels 1 --classes 10 --size 28
  /usr/bin/python3 python/export_model.py mobilenet_v2 models/mnv2.pt --channels 3 --classes 10 --size 32

then, in a config:
  "network": {"name": "torchscript", "path": "models/resnet18.pt", "exclude": ["conv1.weight"]}

Prints the prunable layers prunegym will see (weights with two or more dimensions) and checks the
output shape on a batch of the data's shape. Needs Debian's python3-torch and python3-torchvision.
"""

import argparse
import sys


def adapt(model, channels, classes):
    """Replaces the first convolution (input channels) and the last linear layer (classes)."""
    import torch.nn as nn

    first_conv = next((name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise SystemExit("error: the model has no linear classifier to adapt")
    last_linear = linears[-1]
    replacements = {
        first_conv[0]: nn.Conv2d(channels, first_conv[1].out_channels, first_conv[1].kernel_size, first_conv[1].stride,
                                 first_conv[1].padding, bias=first_conv[1].bias is not None),
        last_linear[0]: nn.Linear(last_linear[1].in_features, classes, bias=last_linear[1].bias is not None),
    }
    for name, new in replacements.items():
        parent = model
        *path, leaf = name.split(".")
        for p in path:
            parent = getattr(parent, p)
        setattr(parent, leaf, new)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("architecture", help="a torchvision.models builder, e.g. resnet18, resnet50, "
                                             "wide_resnet50_2, mobilenet_v2, efficientnet_b2")
    parser.add_argument("out", help="the TorchScript file to write")
    parser.add_argument("--channels", type=int, default=1, help="input channels of the data (default 1)")
    parser.add_argument("--classes", type=int, default=10, help="classes of the data (default 10)")
    parser.add_argument("--size", type=int, default=28, help="image height and width of the data (default 28)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    args = parser.parse_args(argv)
    try:
        import torch
        import torchvision
    except ImportError as e:
        raise SystemExit(f"error: {e.name} is missing: apt-get install python3-torch python3-torchvision "
                         "(and run this with /usr/bin/python3)")
    builder = getattr(torchvision.models, args.architecture, None)
    if builder is None or not callable(builder):
        known = sorted(n for n in dir(torchvision.models) if n[0].islower() and callable(getattr(torchvision.models, n)))
        raise SystemExit(f"error: torchvision has no model '{args.architecture}' (some known: {', '.join(known[:20])}, ...)")
    torch.manual_seed(args.seed)
    model = adapt(builder(), args.channels, args.classes).eval()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        out = scripted(torch.zeros(2, args.channels, args.size, args.size))
    if tuple(out.shape) != (2, args.classes):
        raise SystemExit(f"error: the adapted model gives {tuple(out.shape)} on a [2, {args.channels}, {args.size}, "
                         f"{args.size}] batch; expected (2, {args.classes})")
    scripted.save(args.out)
    prunable = [(n, tuple(p.shape)) for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
    print(f"wrote {args.out}: {args.architecture}, {args.channels} channel(s), {args.classes} classes, "
          f"{len(prunable)} prunable layers ({2 * len(prunable)}-dim per-layer state)")
    for name, shape in prunable:
        print(f"  {name:40s} {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
