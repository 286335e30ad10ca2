"""Any PyTorch model through TorchScript: a scripted model with batch norm and a residual add,
written here, is pruned and fine-tuned by `prunegym train`, and the exported pruned_model.pt opens
in Python with the reported test accuracy and sparsity."""

import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("PRUNEGYM_CLI", "build/bin/prunegym")
CLASSES, SIDE = 4, 12


class Net(torch.nn.Module):
    def __init__(self, classes=CLASSES):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.block = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.block_bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(x + self.block_bn(self.block(x)))  # a residual add
        return self.head(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def write_idx(folder, name, images, labels):
    with open(folder / f"{name}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), SIDE, SIDE))
        f.write(images.astype(np.uint8).tobytes())
    with open(folder / f"{name}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def make_data(folder, n, seed):
    """Each class lights one quadrant of the image, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.integers(0, 90, (n, SIDE, SIDE))
    for i, c in enumerate(labels):
        r, k = divmod(int(c), 2)
        images[i, r * 6:(r + 1) * 6, k * 6:(k + 1) * 6] += 160
    return np.clip(images, 0, 255), labels


@pytest.fixture(scope="module")
def setup():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        data = tmp / "data"
        data.mkdir()
        write_idx(data, "train", *make_data(data, 1200, 1))
        test_images, test_labels = make_data(data, 300, 2)
        write_idx(data, "t10k", test_images, test_labels)
        torch.manual_seed(0)
        torch.jit.script(Net()).save(str(tmp / "model.pt"))
        torch.jit.script(Net(classes=3)).save(str(tmp / "three.pt"))
        torch.save(Net().state_dict(), str(tmp / "state_dict.pt"))
        config = {
            "seed": 0, "threads": 2,
            "data": {"source": "idx", "path": str(data), "validation": 200, "normalize": False},
            "network": {"name": "torchscript", "path": str(tmp / "model.pt"),
                        "pretrain": {"lr": 0.01, "batch_size": 50, "epochs": 3}},
            "env": {"retrain": {"samples": 200, "batch_size": 50}, "reward": {"target_sparsity": 0.5}},
            "train": {"finetune": {"epochs": 1, "batch_size": 50}},
        }
        (tmp / "config.json").write_text(json.dumps(config))
        env = dict(os.environ, PRUNEGYM_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="2")
        yield tmp, env, torch.from_numpy(test_images).float().div(255).unsqueeze(1), torch.from_numpy(test_labels)


def run(args, env):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=600)


def test_a_scripted_model_is_pruned_and_exported_with_the_reported_figures(setup):
    tmp, env, x, y = setup
    out = tmp / "run"
    proc = run(["train", "--config", str(tmp / "config.json"), "--agent", "uniform", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [l["layer"] for l in summary["layers"]] == ["stem.weight", "block.weight", "head.weight"]
    assert 0.3 < summary["sparsity"] < 1 and summary["dense"]["test_accuracy"] > 0.6

    model = torch.jit.load(str(out / "pruned_model.pt")).eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(summary["after_finetune"]["test_accuracy"], abs=1.5 / len(y))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
    remaining = sum(int((w != 0).sum()) for w in weights)
    assert remaining == summary["remaining"] and sum(w.numel() for w in weights) == summary["total"]


def test_include_and_exclude_choose_the_prunable_layers(setup):
    tmp, env, _, _ = setup
    proc = run(["info", "--config", str(tmp / "config.json"), "--set", 'network.exclude=["stem.*","head.*"]'], env)
    assert proc.returncode == 0, proc.stderr
    assert "block.weight" in proc.stdout and "stem.weight" not in proc.stdout and "head.weight" not in proc.stdout
    proc = run(["info", "--config", str(tmp / "config.json"), "--set", 'network.include=["head.weight"]'], env)
    assert proc.returncode == 0 and "1 steps" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("patch, message", [
    (["--set", "network.path=/nonexistent/model.pt"], "torch.jit.save"),
    (["--set", "network.path={three}"], "4 classes"),
    (["--set", "network.path={state_dict}"], "not a TorchScript module"),
    (["--set", 'network.exclude=["*"]'], "no prunable layer"),
])
def test_bad_models_get_clear_errors(setup, patch, message):
    tmp, env, _, _ = setup
    patch = [p.format(three=tmp / "three.pt", state_dict=tmp / "state_dict.pt") for p in patch]
    proc = run(["episode", "--config", str(tmp / "config.json"), "--alpha", "1", *patch], env)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


@pytest.mark.parametrize("network", [
    {"name": "custom", "layers": ["conv:8:3:1", "relu", "maxpool:2", "flatten", "linear:32", "tanh", "linear"]},
    {"name": "resnet20", "width": 0.25},
])
def test_built_in_networks_export_as_torchscript_with_the_reported_figures(setup, network):
    tmp, env, x, y = setup
    config = json.loads((tmp / "config.json").read_text())
    config["network"] = {**network, "pretrain": {"lr": 0.01, "batch_size": 50, "epochs": 2}}
    path = tmp / f"config-{network['name']}.json"
    path.write_text(json.dumps(config))
    out = tmp / f"run-{network['name']}"
    proc = run(["train", "--config", str(path), "--agent", "uniform", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    model = torch.jit.load(str(out / "pruned_model.pt")).eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(summary["after_finetune"]["test_accuracy"], abs=1.5 / len(y))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
    assert len(weights) == len(summary["layers"])
    assert sum(int((w != 0).sum()) for w in weights) == summary["remaining"]


@pytest.mark.parametrize("network", [
    {"name": "custom", "layers": ["conv:8:3:1", "relu", "maxpool:2", "flatten", "linear:32", "tanh", "linear"]},
    {"name": "resnet20", "width": 0.25},
])
def test_a_channel_pruned_run_exports_a_smaller_model_that_computes_the_masked_one(setup, network):
    tmp, env, x, y = setup
    config = json.loads((tmp / "config.json").read_text())
    config["network"] = {**network, "pretrain": {"lr": 0.01, "batch_size": 50, "epochs": 2}}
    # The fraction action: alpha x std of positive channel norms can sit below every norm, pruning nothing.
    config["env"]["criterion"] = {"name": "channel_norm", "rank": "l1", "action": "fraction"}
    path = tmp / f"config-channels-{network['name']}.json"
    path.write_text(json.dumps(config))
    out = tmp / f"run-channels-{network['name']}"
    proc = run(["train", "--config", str(path), "--agent", "uniform", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    # The fraction action's values are targets, not alphas, and the report says so.
    assert summary["value_name"] == "sparsity"
    assert "target" in proc.stdout and "alpha" not in proc.stdout
    exported = summary["export"]
    assert exported["compact"] and exported["removed_channels"] > 0, exported
    compact = torch.jit.load(str(out / "pruned_model.pt")).eval()
    masked = torch.jit.load(str(out / "masked_model.pt")).eval()
    with torch.no_grad():
        small, full = compact(x), masked(x)
    # The same function: channels removed from the compact model were zero in the masked one.
    assert torch.allclose(small, full, atol=1e-4), (small - full).abs().max().item()
    accuracy = (small.argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(summary["after_finetune"]["test_accuracy"], abs=1.5 / len(y))
    parameters = sum(p.numel() for p in compact.parameters())
    assert parameters == exported["parameters"] < exported["dense_parameters"]
    assert sum(p.numel() for p in masked.parameters()) == exported["dense_parameters"]
    assert (out / "pruned_model.pt").stat().st_size == exported["file_bytes"] < exported["masked_file_bytes"]
    assert 0 < exported["macs"] < exported["dense_macs"]
    assert exported["input"] == [1, SIDE, SIDE]
    # ONNX keeps the compact shapes (export_onnx.py checks them against the TorchScript module).
    onnx_file = out / "pruned_model.onnx"
    proc = subprocess.run([sys.executable, str(ROOT / "python" / "export_onnx.py"), str(out / "pruned_model.pt"),
                           str(onnx_file)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["bytes"] == onnx_file.stat().st_size > 0
    assert sorted(report["weights"]) == sorted(exported["shapes"].values())
    assert report["check"].startswith("onnx.checker passed") or report["check"].startswith("skipped")
