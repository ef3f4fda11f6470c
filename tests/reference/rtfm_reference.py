"""Write the RTFM equality fixture (tests/unit/data/rtfm_reference.json) by running the public RTFM code.

The public code: Tian et al.'s RTFM at the commit the fixture pins. Get it with

    git clone https://github.com/tianyu0207/RTFM && git -C RTFM checkout cf938f4c38c908ba19936ecfc60d54de7da0d8b9

It needs torch, numpy, scikit-learn and matplotlib (imported by its test_10crop.py). Run, from the root of
this repository (one thread: the numbers depend on the summation order):

    OMP_NUM_THREADS=1 python tests/reference/rtfm_reference.py --repo RTFM

What it runs, unmodified, twice (float32, then the same model and inputs in float64): the public
``model.Model(2048, 2)`` (its widths are fixed: 2048-d input, 10 crops, 32 segments, k = 3) with every
parameter and buffer set by the rule of fixture_rule.py; its ``test_10crop.test`` on two 10-crop test
videos of 40 and 9 snippets (eval mode); then one call of its ``train.train`` on 2 normal + 2 abnormal
videos of 32 segments (forward, RTFM_loss + smoothness + sparsity, backward, one step of the Adam that
``main.py`` builds: lr 1e-3, weight decay 5e-3). Neutralised at run time (listed in the fixture's
``produced_by``): ``Tensor.cuda`` is the identity; the model's one ``drop_out`` module (after the MTN,
after fc1 and fc2, and on the two selection masks) is replaced by one that leaves features unchanged and
returns fixed selection masks (abnormal first, then normal); the visdom ``viz`` is a stub that keeps
what it is given (the loss terms and the test scores); ``test`` reads its frame labels from
list/gt-sh.npy in the working directory, so it runs in a temporary folder holding made-up labels.

The fixture holds, in float32 and float64: the forward outputs (crop-mean snippet scores and feature
magnitudes, the selected scores and features, the selected snippets), the loss terms (cls, fm, smooth,
sparse, loss), the BatchNorm statistics after the forward, every parameter's gradient, every parameter's
update of the Adam step, and the test scores; large tensors sampled (see fixture_rule.record). It also
holds the public model's parameter count. fm is the public ``RTFM_loss`` with alpha 1 and its BCE
replaced by zero, on the same selected features (so exactly the term the public loss weights by alpha).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from fixture_rule import selection_mask, snippet_features, state_value
from public_run import (
    FixedSelection,
    Recording,
    checked_repository,
    fixture_groups,
    produced_by,
    recorded,
    state_kinds,
    write_json,
)
from torch import nn

CODE = "tianyu0207/RTFM"
COMMIT = "cf938f4c38c908ba19936ecfc60d54de7da0d8b9"
SCRIPT = "tests/reference/rtfm_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "rtfm_reference.json"

PER_CLASS, CROPS, SEGMENTS, DIM, K = 2, 10, 32, 2048, 3
TEST_LENGTHS = (40, 9)
#: u() streams of the inputs and the masks (tensor numbers above any state_dict index).
STREAMS = {"train": 1000, "test": 2000, "mask": 3000}
LR, WEIGHT_DECAY, DROPOUT = 1e-3, 5e-3, 0.7
NEUTRALISED = [
    "Tensor.cuda: identity (CPU run)",
    "Model.drop_out (dropout 0.7 after the MTN, after fc1 and fc2, and on the selection masks): replaced by "
    "a module that returns its input unchanged, except in training mode on the (B, T) selection masks, "
    "where it returns the fixture's masks (abnormal first, then normal)",
    "viz: a stub keeping the logged loss terms and test scores",
    "test_10crop.test: run in a temporary folder whose list/gt-sh.npy holds made-up frame labels",
]
GROUPS = ("forward", "terms", "batchnorm", "grads", "updates", "test_scores")


class Viz:
    """The visdom visualiser's interface, keeping what it is given."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def plot_lines(self, name: str, y: object, **_: object) -> None:
        self.values[name] = y

    def lines(self, name: str, line: object, X: object = None) -> None:  # noqa: N803 (the public name)
        self.values[name] = line


class Zero(nn.Module):
    """A BCE criterion that returns 0."""

    def forward(self, score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return score.new_zeros(())


def public_model(model_module, dtype: torch.dtype) -> tuple[nn.Module, list[list]]:
    """The public Model with the rule's values in `dtype`, and its state as [name, shape, kind] rows."""
    model = model_module.Model(DIM, PER_CLASS)
    kinds = state_kinds(model)
    rows = [[name, list(tensor.shape), kinds[name]] for name, tensor in model.state_dict().items()]
    model.load_state_dict({name: state_value(kind, k, shape) for k, (name, shape, kind) in enumerate(rows)})
    return model.to(dtype), rows


def run_test(test_module, model: nn.Module, dtype: torch.dtype) -> list[torch.Tensor]:
    """The public test() on the test videos, (1, T, crops, D) each as its loader yields them; returns each
    video's snippet scores."""
    loader = [snippet_features(STREAMS["test"] + n, [0], CROPS, length, DIM).transpose(1, 2).to(dtype)
              for n, length in enumerate(TEST_LENGTHS)]
    labels = np.zeros(16 * sum(TEST_LENGTHS))
    labels[16 * 10 : 16 * 20] = 1  # made up: its AUC needs both classes
    viz = Viz()
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "list").mkdir()
        np.save(Path(folder) / "list" / "gt-sh.npy", labels)
        os.chdir(folder)
        try:
            test_module.test(loader, model, argparse.Namespace(dataset="shanghai"), viz, torch.device("cpu"))
        finally:
            os.chdir(cwd)
    scores = torch.as_tensor(np.asarray(viz.values["scores"]))[::16]  # test() repeats each score 16 times
    return list(scores.split(TEST_LENGTHS))


def run_train(train_module, model: nn.Module, dtype: torch.dtype) -> dict:
    """One public train() step; returns the forward outputs, the loss terms, BN statistics, grads, updates."""
    masks = selection_mask(STREAMS["mask"], 2 * PER_CLASS, SEGMENTS, DROPOUT).to(dtype)  # normal rows first
    model.drop_out = FixedSelection([masks[PER_CLASS:], masks[:PER_CLASS]])  # the code draws abnormal first
    videos = snippet_features(STREAMS["train"], [0] * PER_CLASS + [1] * PER_CLASS, CROPS, SEGMENTS, DIM).to(dtype)
    normal = (videos[:PER_CLASS], torch.zeros(PER_CLASS, dtype=dtype))
    abnormal = (videos[PER_CLASS:], torch.ones(PER_CLASS, dtype=dtype))
    terms: dict[str, torch.Tensor] = {}
    outputs: dict[str, tuple] = {}
    public_loss = train_module.RTFM_loss
    public_forward = public_loss.forward

    def recording_forward(self, *inputs):
        """The public RTFM_loss.forward, keeping its BCE term and, from a second public RTFM_loss with alpha 1
        and its BCE replaced by zero on the same inputs, its feature-magnitude term."""
        self.criterion = Recording(self.criterion, terms, "cls")
        fm_only = public_loss(1.0, self.margin)
        fm_only.criterion = Zero()
        terms["fm"] = public_forward(fm_only, *inputs).detach()
        return public_forward(self, *inputs)

    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)  # as main.py builds it
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    viz = Viz()
    handle = model.register_forward_hook(lambda _m, _i, out: outputs.setdefault("forward", out))
    with (
        mock.patch.object(public_loss, "forward", recording_forward),
        mock.patch.object(train_module, "sparsity", recorded(train_module.sparsity, terms, "sparse")),
        mock.patch.object(train_module, "smooth", recorded(train_module.smooth, terms, "smooth")),
    ):
        train_module.train(iter([normal]), iter([abnormal]), model, PER_CLASS, optimizer, viz, torch.device("cpu"))
    handle.remove()
    terms["loss"] = torch.tensor(viz.values["loss"], dtype=torch.float64)

    score_abnormal, score_normal, select_abnormal, select_normal, *_, scores, _, _, magnitudes = outputs["forward"]
    scores, magnitudes = scores.detach().squeeze(-1), magnitudes.detach()
    masked = masks * magnitudes
    selected = masked.topk(K, dim=1).indices  # the public selection: top-k of the masked magnitudes
    assert torch.equal(scores.gather(1, selected).mean(dim=1, keepdim=True),
                       torch.cat([score_normal, score_abnormal]).detach()), "not the public selection"
    ordered = masked.sort(dim=1, descending=True).values
    params = dict(model.named_parameters())
    return {
        "forward": {
            "scores": scores,
            "magnitudes": magnitudes,
            "score_normal": score_normal.detach().squeeze(-1),
            "score_abnormal": score_abnormal.detach().squeeze(-1),
            "selected_normal_features": select_normal.detach(),
            "selected_abnormal_features": select_abnormal.detach(),
        },
        "selected": selected.sort(dim=1).values,
        "selection_margin": float(((ordered[:, K - 1] - ordered[:, K]) / ordered[:, K - 1]).min()),
        "terms": {name: terms[name] for name in ("cls", "fm", "smooth", "sparse", "loss")},
        "batchnorm": {name: b.clone() for name, b in model.named_buffers() if "running" in name},
        "grads": {name: p.grad.clone() for name, p in params.items()},
        "updates": {name: p.detach().double() - before[name].double() for name, p in params.items()},
    }


def run(modules, dtype: torch.dtype) -> tuple[dict, list[list]]:
    model_module, train_module, test_module = modules
    model, rows = public_model(model_module, dtype)
    test_scores = run_test(test_module, model, dtype)  # before training: the rule's BatchNorm statistics
    result = run_train(train_module, model, dtype)
    return {**result, "test_scores": test_scores}, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {CODE} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write")
    args = parser.parse_args()
    repo = checked_repository(args.repo.resolve(), CODE, COMMIT)
    torch.set_num_threads(1)
    torch.Tensor.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(repo))
    import model as model_module
    import test_10crop as test_module
    import train as train_module

    modules = (model_module, train_module, test_module)
    fp32, rows = run(modules, torch.float32)
    fp64, _ = run(modules, torch.float64)
    if not torch.equal(fp32["selected"], fp64["selected"]):
        sys.exit("the float32 and float64 runs selected different snippets; change the masks")
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "rule": {"values": "tests/reference/fixture_rule.py", "streams": STREAMS, "mask_p": DROPOUT},
        "shape": {"per_class": PER_CLASS, "crops": CROPS, "segments": SEGMENTS, "feature_dim": DIM, "k": K,
                  "test_lengths": list(TEST_LENGTHS)},
        "optimizer": {"lr": LR, "weight_decay": WEIGHT_DECAY},
        "parameter_count": sum(p.numel() for p in model_module.Model(DIM, PER_CLASS).parameters()),
        "public_state": rows,
        "selected": fp64["selected"].tolist(),
        "selection_margin": min(fp32["selection_margin"], fp64["selection_margin"]),
        **fixture_groups(fp32, fp64, GROUPS),
    }
    write_json(args.out, fixture)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
