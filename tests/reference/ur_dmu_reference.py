"""Writes tests/unit/data/ur_dmu_reference.json by running the public UR-DMU code, unmodified, at its pinned commit.

Get the code (its large binary files, checkpoints and labels, are not needed):

    git clone https://github.com/henrryzh1/UR-DMU && git -C UR-DMU checkout 40cfdf5f8bebbc3b59373935f9d6ca00e2f32bbc

Packages the public modules need: torch, numpy and einops (``pip install torch numpy einops``). Their
other imports (``ipdb`` in translayer.py, ``visdom`` in utils.py) are stubbed: nothing of them runs here.

Command, from the root of a vadbench checkout (it refuses a checkout at another commit):

    OMP_NUM_THREADS=1 python tests/reference/ur_dmu_reference.py --repo UR-DMU

What runs: the public options' defaults (``config.Config(options.parse_args())`` with no arguments), ``WSAD(D,
flag="Train", a_nums=60, n_nums=60)`` (model.py, memory.py, translayer.py) and ``AD_Loss`` (train.py), one
``Adam(lr config.lr[0], betas (0.9, 0.999), weight_decay 5e-5)`` step as ucf_main.py and xd_main.py build it
(train.py's ``train`` itself is not called: it would switch dropout on and needs a visdom window), and the
test branch (``flag = "Test"``, eval mode, crops averaged after the sigmoid in numpy as xd_test.py does), on
CPU with one thread. Every parameter, input and the VAE noise are set by the rules in the
fixture (no random generator), once in float32 and once in float64 (the same float32 values cast to float64).

Neutralised at run time, by monkeypatching here (the code's files are not changed):

- ``Tensor.cuda`` and ``Module.cuda`` return their object (CPU run);
- ``ipdb`` and ``visdom`` are stub modules;
- dropout by eval mode (``flag = "Train"`` still selects the training branch);
- the VAE noise: ``torch.randn_like`` returns the fixed tensor of the noise rule (in the tensor's dtype);
- float64 run only: ``torch.set_default_dtype(torch.float64)``, so that the tensors the code creates itself
  (the local attention's ``linspace``/``ones``/``tensor(1.)``, the loss's ``ones``) are float64; and the
  BCE's target is cast to the input's dtype (the labels are 0 and 1, so exactly), because ``AD_Loss`` casts
  the labels with ``.float()`` and ``BCELoss`` refuses float32 targets for a float64 input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch
from torch import nn

REPOSITORY = "henrryzh1/UR-DMU"
COMMIT = "40cfdf5f8bebbc3b59373935f9d6ca00e2f32bbc"
SCRIPT = "tests/reference/ur_dmu_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "ur_dmu_reference.json"

#: Feature width, snippets, videos per class, test crops and test video lengths.
SIZES = {"D": 48, "T": 40, "B": 2, "test_crops": 3, "test_lengths": [23, 1]}
#: What ucf_main.py and xd_main.py write as literals (the learning rates and batch size come from the options).
LITERALS = {"betas": [0.9, 0.999], "weight_decay": 5e-5, "train_segments": 200, "slots": 60}
RULES = {
    "value_rule": "k-th tensor of the public state_dict (order in 'public_parameters'), flat index j, "
    "b = sin(0.37 j + 1.3 k + 0.11 + 0.0007 (j mod 9973)^2) in float64: '*norm.weight' 1 + 0.2 b; '*bias' 0.1 b; "
    "'*memory_block' 4 b / sqrt(shape[-1]); otherwise 1.5 b / sqrt(prod(shape[1:])); then float32",
    "input_rule": "inputs(count, T, D, offset)[i, t, d] = 0.5 + 0.5 sin(0.7 t + 1.1 d + 0.05 t d + 2.3 i + offset) "
    "+ 0.02 d / D (float64, then float32); train batch = [inputs(B, T, D, 0); inputs(B, T, D, 0.5) + 0.1], labels "
    "[0] * B + [1] * B; test video n = inputs(test_crops, test_lengths[n], D, 1.7 + n) as (crops, T, D)",
    "noise_rule": "eps (B, T, 512), flat index j: cos(0.9 j + 0.3) (float64, then float32)",
    "sample_rule": "flat indices sorted({(i * 7919 + 13) % numel for i in range(12)})",
    "float64_rule": "the float64 run casts the float32 parameters, inputs and noise to float64",
}


def value_rule(name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    j = torch.arange(math.prod(shape), dtype=torch.float64)
    base = torch.sin(0.37 * j + 1.3 * k + 0.11 + 0.0007 * torch.remainder(j, 9973) ** 2)
    if name.endswith("norm.weight"):
        value = 1.0 + 0.2 * base
    elif name.endswith("bias"):
        value = 0.1 * base
    elif name.endswith("memory_block"):
        value = 4.0 * base / math.sqrt(shape[-1])
    else:
        value = 1.5 * base / math.sqrt(math.prod(shape[1:]))
    return value.reshape(shape).float()


def inputs(count: int, length: int, dim: int, offset: float) -> torch.Tensor:
    i = torch.arange(count, dtype=torch.float64)[:, None, None]
    t = torch.arange(length, dtype=torch.float64)[None, :, None]
    d = torch.arange(dim, dtype=torch.float64)[None, None, :]
    return (0.5 + 0.5 * torch.sin(0.7 * t + 1.1 * d + 0.05 * t * d + 2.3 * i + offset) + 0.02 * d / dim).float()


def noise(shape: tuple[int, ...]) -> torch.Tensor:
    j = torch.arange(math.prod(shape), dtype=torch.float64)
    return torch.cos(0.9 * j + 0.3).reshape(shape).float()


def sample_index(numel: int) -> list[int]:
    return sorted({(i * 7919 + 13) % numel for i in range(12)})


def checked_out(repo: Path) -> None:
    """Exit 2 with one line unless `repo` is a checkout at the pinned commit."""
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0 or head.stdout.strip() != COMMIT:
        found = head.stdout.strip() or head.stderr.strip().splitlines()[-1]
        print(f"{Path(sys.argv[0]).name}: --repo {repo}: expected a checkout of {REPOSITORY} at {COMMIT}, "
              f"found {found}", file=sys.stderr)
        sys.exit(2)


def public_modules(repo: Path) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """The public model.py, train.py and config.py, imported from `repo` with the stubs and the CPU patch."""
    sys.modules["ipdb"] = types.ModuleType("ipdb")
    visdom = types.ModuleType("visdom")
    visdom.Visdom = object  # type: ignore[attr-defined]
    sys.modules["visdom"] = visdom
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    sys.path.insert(0, str(repo))
    import config
    import model
    import train

    return model, train, config


def public_config(config: types.ModuleType) -> object:
    """The public defaults: ``config.Config(options.parse_args())`` without arguments (it creates models/ and
    outputs/ in the working directory, so it runs in a scratch one)."""
    argv, cwd = sys.argv, os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        sys.argv = ["ucf_main.py"]
        os.chdir(scratch)
        try:
            return config.Config(config.options.parse_args())
        finally:
            os.chdir(cwd)
            sys.argv = argv


class TargetCastBCE(nn.BCELoss):
    """``BCELoss`` with the target cast to the input's dtype (float64 run only; labels 0/1 cast exactly)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(input, target.to(input.dtype))


def flat(tensor: torch.Tensor) -> dict:
    return {"shape": list(tensor.shape), "value": tensor.detach().reshape(-1).tolist()}


def sampled(tensor: torch.Tensor) -> dict:
    index = sample_index(tensor.numel())
    return {"index": index, "value": tensor.detach().reshape(-1)[index].tolist()}


def set_parameters(net: nn.Module) -> None:
    with torch.no_grad():
        for k, (name, tensor) in enumerate(net.state_dict().items()):
            tensor.copy_(value_rule(name, k, tuple(tensor.shape)))


def run(model: types.ModuleType, train: types.ModuleType, lr: float, dtype: torch.dtype) -> dict:
    """Test branch, training branch, every loss term, gradients and one Adam step of the public code."""
    b, t, d = SIZES["B"], SIZES["T"], SIZES["D"]
    torch.set_default_dtype(dtype)
    try:
        net = model.WSAD(d, flag="Train", a_nums=LITERALS["slots"], n_nums=LITERALS["slots"])
        set_parameters(net)
        net.eval()  # dropout off; the flag selects the branch

        net.flag = "Test"
        test = []
        with torch.no_grad():
            for n, length in enumerate(SIZES["test_lengths"]):
                crop_scores = net(inputs(SIZES["test_crops"], length, d, 1.7 + n).to(dtype))["frame"]
                scores = torch.from_numpy(crop_scores.cpu().numpy().mean(0))  # as xd_test.py averages the crops
                test.append({"length": length, "crop_scores": flat(crop_scores), "scores": flat(scores)})

        net.flag = "Train"
        eps = noise((b, t, 512)).to(dtype)
        torch.randn_like = lambda like, *args, **kwargs: eps.to(like.dtype).clone()
        data = torch.cat([inputs(b, t, d, 0.0), inputs(b, t, d, 0.5) + 0.1]).to(dtype)
        labels = torch.cat([torch.zeros(b), torch.ones(b)])
        criterion = train.AD_Loss()
        if dtype == torch.float64:
            criterion.bce = TargetCastBCE()
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(LITERALS["betas"]),
                                     weight_decay=LITERALS["weight_decay"])
        result = net(data)
        cost, losses = criterion(result, labels)
        optimizer.zero_grad()
        cost.backward()
        params = dict(net.named_parameters())
        before = {name: p.detach().clone() for name, p in params.items()}
        grads = {name: {"norm": p.grad.norm().item(), **sampled(p.grad)} for name, p in params.items()}
        optimizer.step()
    finally:
        torch.set_default_dtype(torch.float32)
    return {
        "forward": {name: flat(result[name]) for name in ("frame", "A_att", "N_att", "A_Natt", "N_Aatt")},
        "losses": {**{name: value.item() for name, value in losses.items()}, "distance": result["distance"].item()},
        "grads": grads,
        "after_step": {name: sampled(p) for name, p in params.items()},
        "update": {name: sampled(p.detach() - before[name]) for name, p in params.items()},
        "test": test,
    }


def parameter_counts(model: types.ModuleType) -> dict[str, int]:
    """The public model's parameter count at its published widths, for 1024-d (I3D) and 2048-d features."""
    slots = LITERALS["slots"]
    return {str(dim): sum(p.numel() for p in model.WSAD(dim, flag="Train", a_nums=slots, n_nums=slots).parameters())
            for dim in (1024, 2048)}


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
    args = parser.parse_args()
    checked_out(args.repo)
    torch.set_num_threads(1)
    model, train, config = public_modules(args.repo.resolve())
    defaults = public_config(config)
    net = model.WSAD(SIZES["D"], flag="Train", a_nums=LITERALS["slots"], n_nums=LITERALS["slots"])
    fixture = {
        "produced_by": {
            "script": SCRIPT,
            "code": f"{REPOSITORY}@{COMMIT}",
            "ran": "config.Config(options.parse_args()) defaults, model.py WSAD, train.py AD_Loss, one "
            "torch.optim.Adam step as ucf_main.py builds it, the test branch",
            "torch": torch.__version__,
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "neutralised": [
                "Tensor.cuda and Module.cuda: identity (CPU)",
                "ipdb, visdom: stub modules",
                "dropout: eval mode (flag 'Train' still selects the training branch)",
                "VAE noise: torch.randn_like returns the noise_rule tensor",
                "float64 run: torch.set_default_dtype(torch.float64); BCELoss target cast to the input's dtype",
            ],
        },
        **RULES,
        "sizes": SIZES,
        "defaults": {"lr": defaults.lr[0], "lr_schedule_constant": len(set(defaults.lr)) == 1,
                     "steps": defaults.num_iters, "batch_size": defaults.batch_size, **LITERALS},
        "public_parameters": [[name, list(t.shape)] for name, t in net.state_dict().items()],
        "parameter_count": parameter_counts(model),
        "float32": run(model, train, defaults.lr[0], torch.float32),
        "float64": run(model, train, defaults.lr[0], torch.float64),
    }
    args.out.write_text(dumps(fixture) + "\n")


if __name__ == "__main__":
    main()
