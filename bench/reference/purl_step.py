#!/usr/bin/python3
"""The PuRL environment step in plain Python/PyTorch: the peer prunegym's step is measured against.

The same work as `prunegym`'s step on configs/lenet300-fashion.json (or, with --network, on the
residual-network configs): the network on Fashion-MNIST (normalised with the training mean and std,
5,000 training images held out for validation), one layer pruned per step by
|w| < alpha * std(surviving weights), retraining on 1,000 random training images in batches of 100
with Adam (1e-3, gradients of pruned weights masked, masks re-applied after each update), then
accuracy on the validation images. Written as a competent PyTorch user would: tensors kept in
memory, index_select for batches, inference mode for evaluation, one optimizer per episode.
Residual networks are torchvision's own blocks (torchvision.models.resnet.Bottleneck/BasicBlock)
at prunegym's channel widths; batch norm trains in train mode and evaluates in eval mode.

  /usr/bin/python3 bench/reference/purl_step.py [--steps 30] [--threads 2] [--dense-epochs 1]
  /usr/bin/python3 bench/reference/purl_step.py --network resnet50 --width 0.25 --eval-samples 1000 --eval-batch 500

Prints one JSON object with the same fields as bench_step.
"""

import argparse
import gzip
import json
import pathlib
import resource
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")


def read_idx(stem):
    def open_any(name):
        path = DATA / (name + ".gz")
        return gzip.open(path, "rb") if path.exists() else open(DATA / name, "rb")

    with open_any(stem + "-images-idx3-ubyte") as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, rows, cols)
    with open_any(stem + "-labels-idx1-ubyte") as f:
        f.read(8)
        y = np.frombuffer(f.read(), dtype=np.uint8)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


class LeNet300(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 300)
        self.fc2 = torch.nn.Linear(300, 100)
        self.fc3 = torch.nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def scaled(channels, width):
    return max(1, int(round(channels * width)))


class ResNet(torch.nn.Module):
    """prunegym's residual networks from torchvision's blocks: ImageNet layout (7x7/2 stem, max-pool,
    4 stages) or CIFAR layout (3x3 stem, 3 stages), every channel count times `width`."""

    def __init__(self, name, width, channels, classes):
        super().__init__()
        from torchvision.models import resnet as tv

        layouts = {"resnet18": (tv.BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512], True),
                   "resnet50": (tv.Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], True),
                   "resnet20": (tv.BasicBlock, [3, 3, 3], [16, 32, 64], False),
                   "resnet56": (tv.BasicBlock, [9, 9, 9], [16, 32, 64], False)}
        block, blocks, widths, imagenet = layouts[name]
        self.imagenet = imagenet
        planes = scaled(widths[0], width)
        self.conv1 = torch.nn.Conv2d(channels, planes, 7 if imagenet else 3, 2 if imagenet else 1,
                                     3 if imagenet else 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        inplanes = planes
        stages = []
        for s, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                p = scaled(w, width)
                down = None
                if stride != 1 or inplanes != p * block.expansion:
                    down = torch.nn.Sequential(torch.nn.Conv2d(inplanes, p * block.expansion, 1, stride, bias=False),
                                               torch.nn.BatchNorm2d(p * block.expansion))
                layers.append(block(inplanes, p, stride, down))
                inplanes = p * block.expansion
            stages.append(torch.nn.Sequential(*layers))
        self.stages = torch.nn.Sequential(*stages)
        self.fc = torch.nn.Linear(inplanes, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.stages(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(args):
    if args.network == "lenet300":
        return LeNet300()
    return ResNet(args.network, args.width, 1, 10)


def quantile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=1.1)
    ap.add_argument("--dense-epochs", type=int, default=1, help="epochs of dense training before the steps")
    ap.add_argument("--network", default="lenet300", choices=["lenet300", "resnet18", "resnet50", "resnet20", "resnet56"])
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier of residual networks")
    ap.add_argument("--retrain-samples", type=int, default=1000)
    ap.add_argument("--eval-samples", type=int, default=5000, help="validation images per evaluation")
    ap.add_argument("--eval-batch", type=int, default=0, help="evaluation batch size (0: one batch)")
    ap.add_argument("--channels-last", action="store_true", help="channels-last memory format (a lever to measure)")
    ap.add_argument("--frozen-eval", action="store_true",
                    help="evaluate through a frozen, inference-optimised TorchScript graph (batch norm folded, "
                         "oneDNN prepacked weights), rebuilt at every step since retraining changes the weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # Data: the same split and normalisation as prunegym (fixed permutation, training statistics).
    x_all, y_all = read_idx("train")
    x_test, y_test = read_idx("t10k")
    g = torch.Generator()
    g.manual_seed(0 + 0x5EED)
    perm = torch.randperm(x_all.shape[0], generator=g)
    val_idx, train_idx = perm[:5000], perm[5000:]
    train_x = x_all.index_select(0, train_idx).float().div_(255)
    train_y = y_all.index_select(0, train_idx)
    val_x = x_all.index_select(0, val_idx).float().div_(255)
    val_y = y_all.index_select(0, val_idx)
    mean, std = train_x.mean().item(), train_x.std().item()
    train_x.sub_(mean).div_(std)
    val_x.sub_(mean).div_(std)
    del x_all, x_test, y_test

    val_x, val_y = val_x[:args.eval_samples], val_y[:args.eval_samples]
    model = build(args)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        train_x = train_x.contiguous(memory_format=torch.channels_last)
        val_x = val_x.contiguous(memory_format=torch.channels_last)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    masks = [torch.ones_like(l.weight) for l in layers]

    def train(samples, batch, epochs, optimizer):
        model.train()
        idx = torch.randperm(train_x.shape[0])[:samples] if samples else torch.arange(train_x.shape[0])
        xs, ys = train_x.index_select(0, idx), train_y.index_select(0, idx)
        for _ in range(epochs):
            order = torch.randperm(xs.shape[0])
            xs_e, ys_e = xs.index_select(0, order), ys.index_select(0, order)
            for start in range(0, xs.shape[0], batch):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(xs_e[start:start + batch]), ys_e[start:start + batch])
                loss.backward()
                for layer, mask in zip(layers, masks):
                    layer.weight.grad.mul_(mask)
                optimizer.step()
                with torch.no_grad():
                    for layer, mask in zip(layers, masks):
                        layer.weight.mul_(mask)

    def evaluate():
        model.eval()
        batch = args.eval_batch or val_x.shape[0]
        correct = 0
        net = model
        if args.frozen_eval:
            net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))
        with torch.inference_mode():
            for start in range(0, val_x.shape[0], batch):
                out = net(val_x[start:start + batch])
                correct += (out.argmax(1) == val_y[start:start + batch]).sum().item()
        return correct / val_x.shape[0]

    # The dense model every episode starts from.
    if args.dense_epochs:
        train(0, 128, args.dense_epochs, torch.optim.Adam(model.parameters(), lr=1e-3))
    dense_state = {k: v.clone() for k, v in model.state_dict().items()}

    totals, prunes, retrains, evals, resets = [], [], [], [], []
    warmup = min(6, len(layers))
    while len(totals) < args.steps + warmup:
        t0 = time.perf_counter()
        model.load_state_dict(dense_state)
        for m in masks:
            m.fill_(1.0)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        resets.append((time.perf_counter() - t0) * 1e3)
        for layer, mask in zip(layers, masks):
            if len(totals) >= args.steps + warmup:
                break
            t0 = time.perf_counter()
            with torch.no_grad():
                alive = layer.weight[mask.bool()]
                threshold = args.alpha * alive.std()
                mask.mul_((layer.weight.abs() >= threshold).float())
                layer.weight.mul_(mask)
            t1 = time.perf_counter()
            train(args.retrain_samples, 100, 1, optimizer)
            t2 = time.perf_counter()
            evaluate()
            t3 = time.perf_counter()
            totals.append((t3 - t0) * 1e3)
            prunes.append((t1 - t0) * 1e3)
            retrains.append((t2 - t1) * 1e3)
            evals.append((t3 - t2) * 1e3)
    totals, prunes, retrains, evals = (v[warmup:] for v in (totals, prunes, retrains, evals))

    def stats(v):
        if not v:
            return None
        return {"median": quantile(v, 0.5), "p90": quantile(v, 0.9)}

    print(json.dumps({"implementation": "python/pytorch " + torch.__version__, "network": args.network,
                      "width": args.width, "layers": len(layers), "eval_samples": val_x.shape[0], "threads": torch.get_num_threads(),
                      "steps": len(totals), "step_ms": stats(totals), "prune_ms": stats(prunes),
                      "retrain_ms": stats(retrains), "eval_ms": stats(evals), "reset_ms": stats(resets[1:] or resets),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
