"""Writes tests/unit/data/bn_wvad_reference.json by running the public BN-WVAD code, unmodified, at its pinned commit.

Get the code (its checkpoint and label files are not needed):

    git clone https://github.com/cool-xuan/BN-WVAD && git -C BN-WVAD checkout 4fa3a5dfb139d5c97a0511016110f15058d7c235

Packages the public modules need: torch, numpy and einops (``pip install torch numpy einops``). The
``ipdb`` import of models/translayer.py is stubbed: nothing of it runs here.

Command, from the root of a vadbench checkout (it refuses a checkout at another commit):

    OMP_NUM_THREADS=1 python tests/reference/bn_wvad_reference.py --repo BN-WVAD

What runs: the public options' defaults (``options.parse_args()`` with no arguments), ``WSAD(D, flag="Train",
args)`` (models/), ``LossComputer()`` (losses/), ``train()`` (train.py: training mode, the loss, backward,
gradient norm clipped at 1, one step of ``Adam(lr args.lr[0], betas (0.9, 0.999), weight_decay
args.weight_decay)`` as main.py builds it), then the test branch (``flag = "Test"``, eval mode, the crops'
products averaged with numpy as test.py's ``get_predicts`` does), on CPU with one thread. Every parameter, BN
running statistic and input is set by the rule in the fixture (no random generator), once in float32 and
once in float64 (the same float32 values cast to float64). Nothing random runs: the transformer's dropout is 0.

Neutralised at run time, by monkeypatching here (the code's files are not changed):

- ``Tensor.cuda`` and ``Module.cuda`` return their object (CPU run);
- ``ipdb`` is a stub module;
- float64 run only: ``torch.set_default_dtype(torch.float64)``, so that the tensors the code creates itself
  (the local attention's ``linspace``/``ones``/``tensor(1.)``) are float64.

Recorded without changing what runs: the model's output dict (a forward hook), each layer's unweighted
triplet loss (a global forward hook on ``TripletMarginWithDistanceLoss``), and the gradients and their total
norm (a wrapper of ``torch.nn.utils.clip_grad_norm_`` that reads them, then calls torch's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch
from torch import nn

REPOSITORY = "cool-xuan/BN-WVAD"
COMMIT = "4fa3a5dfb139d5c97a0511016110f15058d7c235"
SCRIPT = "tests/reference/bn_wvad_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "bn_wvad_reference.json"

#: Videos per class, snippets, feature width, test crops and the test video's length.
SIZES = {"normal": 3, "abnormal": 3, "T": 20, "D": 32, "test_crops": 5, "test_T": 9}
RULES = {
    "rule": "u(k, j) = h / 2**32, h = (j * 2246822519 + k * 3266489917 + 374761393) mod 2**32; h ^= h >> 16; "
    "h = (h * 668265263) mod 2**32; h ^= h >> 13 (int64 arithmetic); k = index of the tensor in the public "
    "state_dict order (buffers included, 'public_state'), j = flat index. ndim >= 2: (2u - 1) * sqrt(3 / fan_in), "
    "fan_in = numel / shape[0]; 1-D '.weight' (LayerNorm, BatchNorm): 0.8 + 0.4 u; other 1-D (biases): "
    "0.1 (2u - 1); running_mean: 0.3 (2u - 1); running_var: 0.3 + 1.4 u; num_batches_tracked: 0; each in float64, "
    "then float32. Train batch (6, 20, 32) normal first: x = 2 float32(u(1000, flat index)) - 1, then "
    "x[3:, 5:11] += 0.8 and x[5] *= 4 (float32); test video: 5 crop rows (5, 9, 32) = 2 float32(u(2000, flat)) - 1, "
    "and one 1-snippet video (5, 1, 32) = 2 float32(u(3000, flat)) - 1.",
    "sample_rule": "flat indices sorted({round(i * (numel - 1) / 11) for i in range(12)})",
    "float64_rule": "the float64 run casts the float32 parameters, BN statistics and inputs to float64",
}


def hash_uniform(k: int, count: int) -> torch.Tensor:
    j = torch.arange(count, dtype=torch.int64)
    mask = (1 << 32) - 1
    h = (j * 2246822519 + k * 3266489917 + 374761393) & mask
    h = h ^ (h >> 16)
    h = (h * 668265263) & mask
    h = h ^ (h >> 13)
    return h.double() / 2.0**32


def rule_value(name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    count = 1
    for size in shape:
        count *= size
    u = hash_uniform(k, count)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if name.endswith("running_mean"):
        value = 0.3 * (2 * u - 1)
    elif name.endswith("running_var"):
        value = 0.3 + 1.4 * u
    elif len(shape) >= 2:
        value = (2 * u - 1) * (3.0 / (count / shape[0])) ** 0.5
    elif name.endswith(".weight"):
        value = 0.8 + 0.4 * u
    else:
        value = 0.1 * (2 * u - 1)
    return value.reshape(shape).float()


def train_input() -> torch.Tensor:
    n, steps, dim = SIZES["normal"] + SIZES["abnormal"], SIZES["T"], SIZES["D"]
    x = 2 * hash_uniform(1000, n * steps * dim).reshape(n, steps, dim).float() - 1
    x[SIZES["normal"]:, 5:11] += 0.8
    x[-1] *= 4.0
    return x


def video_input(key: int, steps: int) -> torch.Tensor:
    crops, dim = SIZES["test_crops"], SIZES["D"]
    return 2 * hash_uniform(key, crops * steps * dim).reshape(crops, steps, dim).float() - 1


def sample_index(numel: int) -> list[int]:
    return sorted({round(i * (numel - 1) / 11) for i in range(12)})


def checked_out(repo: Path) -> None:
    """Exit 2 with one line unless `repo` is a checkout at the pinned commit."""
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0 or head.stdout.strip() != COMMIT:
        found = head.stdout.strip() or head.stderr.strip().splitlines()[-1]
        print(f"{Path(sys.argv[0]).name}: --repo {repo}: expected a checkout of {REPOSITORY} at {COMMIT}, "
              f"found {found}", file=sys.stderr)
        sys.exit(2)


def public_modules(repo: Path) -> types.SimpleNamespace:
    """The public options, models, losses and train modules, imported from `repo` with the stub and CPU patch."""
    sys.modules["ipdb"] = types.ModuleType("ipdb")
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    sys.path.insert(0, str(repo))
    import losses
    import models
    import options
    import train

    return types.SimpleNamespace(options=options, models=models, losses=losses, train=train)


def public_args(options: types.ModuleType) -> argparse.Namespace:
    """The public defaults: ``options.parse_args()`` without arguments (it creates logs/ and ckpts/ in the
    working directory, so it runs in a scratch one)."""
    argv, cwd = sys.argv, os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        sys.argv = ["main.py"]
        os.chdir(scratch)
        try:
            return options.parse_args()
        finally:
            os.chdir(cwd)
            sys.argv = argv


def flat(tensor: torch.Tensor) -> dict:
    return {"shape": list(tensor.shape), "value": tensor.detach().reshape(-1).tolist()}


def sampled(tensor: torch.Tensor) -> dict:
    index = sample_index(tensor.numel())
    return {"index": index, "value": tensor.detach().reshape(-1)[index].tolist()}


def set_state(net: nn.Module) -> None:
    with torch.no_grad():
        for k, (name, tensor) in enumerate(net.state_dict().items()):
            tensor.copy_(rule_value(name, k, tuple(tensor.shape)))


def test_scores(net: nn.Module, video: torch.Tensor) -> dict:
    """The test branch on one video's crop rows (crops, T, D): per-crop products and their crop mean, the mean
    taken in numpy as test.py's ``get_predicts`` takes it."""
    with torch.no_grad():
        per_crop = net(video)
    return {"per_crop": flat(per_crop), "video": flat(torch.from_numpy(per_crop.cpu().numpy().mean(0)))}


def run(public: types.SimpleNamespace, args: argparse.Namespace, dtype: torch.dtype) -> dict:
    """Test scores, then one public training step: forward, anchors, selection, losses, gradients, step."""
    recorded: dict = {"triplets": []}
    clip = torch.nn.utils.clip_grad_norm_

    def record_gradients(parameters, max_norm, *rest, **kwargs):
        parameters = list(parameters)
        recorded["grads"] = {id(p): p.grad.detach().clone() for p in parameters}
        recorded["before"] = {id(p): p.detach().clone() for p in parameters}
        recorded["total_norm"] = clip(parameters, max_norm, *rest, **kwargs)
        return recorded["total_norm"]

    def record_triplet(module, inputs, output):
        if isinstance(module, nn.TripletMarginWithDistanceLoss):
            recorded["triplets"].append(output.detach().clone())

    torch.set_default_dtype(dtype)
    try:
        net = public.models.WSAD(SIZES["D"], flag="Train", args=args)
        set_state(net)
        net.flag = "Test"
        net.eval()
        test = test_scores(net, video_input(2000, SIZES["test_T"]).to(dtype))
        test["short_video"] = test_scores(net, video_input(3000, 1).to(dtype))["video"]

        x = train_input().to(dtype)
        half = SIZES["normal"]
        normal = iter([(x[:half], torch.zeros(half))])
        abnormal = iter([(x[half:], torch.ones(SIZES["abnormal"]))])
        optimizer = torch.optim.Adam(net.parameters(), lr=args.lr[0], betas=(0.9, 0.999),
                                     weight_decay=args.weight_decay)
        output_hook = net.register_forward_hook(lambda module, inputs, output: recorded.update(output=output))
        triplet_hook = nn.modules.module.register_module_forward_hook(record_triplet)
        torch.nn.utils.clip_grad_norm_ = record_gradients
        try:
            losses = public.train.train(net, normal, abnormal, optimizer, public.losses.LossComputer())
        finally:
            torch.nn.utils.clip_grad_norm_ = clip
            triplet_hook.remove()
            output_hook.remove()
    finally:
        torch.set_default_dtype(torch.float32)

    bn = recorded["output"]["bn_results"]
    params = dict(net.named_parameters())
    mpp1, mpp2 = recorded["triplets"]
    return {
        "forward": {
            "normal_scores": flat(recorded["output"]["pre_normal_scores"]),
            "anchors": [flat(a) for a in bn["anchors"]],
            "variances": [flat(v) for v in bn["variances"]],
            "select_normals": [flat(s[..., 0]) for s in bn["select_normals"]],
            "select_abnormals": [flat(s[..., 0]) for s in bn["select_abnormals"]],
            "selected": [len(s) for s in bn["select_abnormals"]],
        },
        "loss": {
            "total": losses["total_loss"].item(), "normal": losses["normal_loss"].item(),
            "mpp": losses["mpp_loss"].item(), "mpp1": mpp1.item(), "mpp2": mpp2.item(),
        },
        "grads": {name: {"norm": recorded["grads"][id(p)].norm().item(), **sampled(recorded["grads"][id(p)])}
                  for name, p in params.items()},
        "grad_total_norm_before_clip": recorded["total_norm"].item(),
        "after_step": {name: sampled(p) for name, p in params.items()},
        "update": {name: sampled(p.detach() - recorded["before"][id(p)]) for name, p in params.items()},
        "test": test,
    }


def counts(public: types.SimpleNamespace, args: argparse.Namespace) -> dict[str, int]:
    """The public model's parameter and BN running-statistic counts at its published widths, 1024-d input."""
    net = public.models.WSAD(1024, flag="Train", args=args)
    return {"parameters_1024": sum(p.numel() for p in net.parameters()),
            "running_statistics": sum(b.numel() for n, b in net.named_buffers() if "running" in n)}


def dumps(value: object, indent: str = "") -> str:
    """JSON with one key a line and every list on one line (short and diffable)."""
    if isinstance(value, dict) and value:
        inner = indent + " "
        items = (f"{inner}{json.dumps(key)}: {dumps(item, inner)}" for key, item in value.items())
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return json.dumps(value)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write (default: %(default)s)")
    options = parser.parse_args()
    checked_out(options.repo)
    torch.set_num_threads(1)
    public = public_modules(options.repo.resolve())
    args = public_args(public.options)
    net = public.models.WSAD(SIZES["D"], flag="Train", args=args)
    fixture = {
        "produced_by": {
            "script": SCRIPT,
            "code": f"{REPOSITORY}@{COMMIT}",
            "ran": "options.parse_args() defaults, models WSAD, losses LossComputer, train.train (one clipped Adam "
            "step as main.py builds it), the test branch",
            "torch": torch.__version__,
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "neutralised": [
                "Tensor.cuda and Module.cuda: identity (CPU)",
                "ipdb: stub module",
                "float64 run: torch.set_default_dtype(torch.float64)",
            ],
        },
        **RULES,
        "sizes": SIZES,
        "optimiser": {"lr": args.lr[0], "lr_schedule_constant": len(set(args.lr)) == 1, "steps": len(args.lr),
                      "weight_decay": args.weight_decay, "betas": [0.9, 0.999], "clip": 1.0},
        "selection": {"ratio_sample": args.ratio_sample, "ratio_batch": args.ratio_batch},
        "public_state": [[name, list(t.shape)] for name, t in net.state_dict().items()],
        "counts": counts(public, args),
        "float32": run(public, args, torch.float32),
        "float64": run(public, args, torch.float64),
    }
    options.out.write_text(dumps(fixture) + "\n")


if __name__ == "__main__":
    main()
