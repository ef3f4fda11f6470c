"""Write the MGFN equality fixture (tests/unit/data/mgfn_reference.json) by running the public MGFN code.

The public code: Chen et al.'s MGFN at the commit the fixture pins (the repository's name ends in a dot).
Get it with

    git clone https://github.com/carolchenyx/MGFN. MGFN && git -C MGFN checkout 98e9389e7f7f52aad401c81457fc286653de9990

It needs torch, numpy, einops, scikit-learn and matplotlib (imported by its test.py) and tqdm. Run, from
the root of this repository (one thread: the numbers depend on the summation order):

    OMP_NUM_THREADS=1 python tests/reference/mgfn_reference.py --repo MGFN

What it runs, unmodified, twice (float32, then the same model and inputs in float64), with the options
``--batch_size 2`` and otherwise the defaults: the public ``models.mgfn.mgfn(dims=(64, 128, 256))`` (the
published first two stage widths, a narrower last stage to keep the run small; the input width 2048,
10 crops and 32 segments are fixed by the code) with every parameter and buffer set by the rule of
fixture_rule.py; its ``test.test`` on two 10-crop test videos of 40 and 9 snippets (eval mode); one call
of its ``train.train`` on 2 normal + 2 abnormal videos of 32 segments (forward, mgfn_loss + smoothness
+ sparsity, backward, one step of the Adam that ``main.py`` builds: lr 1e-3, weight decay 5e-4); and,
on a second model with the same values, one call of ``train.train`` as the authors first published it
(train.py at ded0ef6, read from the same checkout's history; its sparsity and smoothness act on the
abnormal scores). The inputs carry the magnitude channel as the public dataset appends it
(``np.linalg.norm`` over the feature axis). Neutralised at run time (listed in the fixture's
``produced_by``): ``Tensor.cuda`` is the identity; ``torch.set_default_tensor_type`` is ignored while the
code is imported (it asks for CUDA tensors); ``visdom`` (imported, unused) is an empty module; the model's
dropout module (used only for the two selection masks) is replaced by one that returns fixed masks
(abnormal first, then normal); ``test`` reads its frame labels from the ``--gt`` option, a temporary file
of made-up labels, and its scores are taken from its call of ``roc_curve``.

The fixture holds, in float32 and float64: the forward outputs (crop-mean snippet scores, the crop-mean
magnitudes of the final features, the selected scores and features, their L1 norms, the selected
snippets), the loss terms (cls, con, con_n, con_a, mgfn, smooth, sparse, loss, and the original code's
smooth, sparse, loss), the BatchNorm statistics after the forward, every parameter's gradient and
update of the Adam step, and the test scores; large tensors sampled (see fixture_rule.record). It also
holds the public model's parameter counts at the published and at these widths.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import types
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

CODE = "carolchenyx/MGFN."
COMMIT = "98e9389e7f7f52aad401c81457fc286653de9990"
#: The authors' own train.py, before a contributor's commit (a6588e1) changed its regularisers.
ORIGINAL = "ded0ef6"
SCRIPT = "tests/reference/mgfn_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "mgfn_reference.json"

PER_CLASS, CROPS, SEGMENTS, DIM, K = 2, 10, 32, 2048, 3
DIMS = (64, 128, 256)
TEST_LENGTHS = (40, 9)
#: u() streams of the inputs and the masks (tensor numbers above any state_dict index).
STREAMS = {"train": 1000, "test": 2000, "mask": 3000}
LR, WEIGHT_DECAY, DROPOUT = 1e-3, 5e-4, 0.7
NEUTRALISED = [
    "Tensor.cuda: identity (CPU run)",
    "torch.set_default_tensor_type: ignored while the public modules are imported (they ask for CUDA tensors)",
    "visdom: an empty module (imported by utils/utils.py, unused)",
    "mgfn.drop_out (dropout 0.7, used only on the selection masks): replaced by a module that returns the "
    "fixture's masks in training mode (abnormal first, then normal) and its input otherwise",
    "test.test: --gt is a temporary file of made-up frame labels; its scores are read from its roc_curve call",
]
GROUPS = ("forward", "terms", "original", "batchnorm", "grads", "updates", "test_scores")


def with_magnitude(features: torch.Tensor) -> torch.Tensor:
    """The features with the magnitude channel appended as the public dataset computes it."""
    magnitude = np.linalg.norm(features.numpy(), axis=-1)[..., np.newaxis]
    return torch.cat([features, torch.from_numpy(magnitude)], dim=-1)


def public_model(mgfn_module, dtype: torch.dtype) -> tuple[nn.Module, list[list]]:
    """The public mgfn with the rule's values in `dtype`, and its state as [name, shape, kind] rows."""
    model = mgfn_module.mgfn(dims=DIMS)
    kinds = state_kinds(model)
    rows = [[name, list(tensor.shape), kinds[name]] for name, tensor in model.state_dict().items()]
    model.load_state_dict({name: state_value(kind, k, shape) for k, (name, shape, kind) in enumerate(rows)})
    return model.to(dtype), rows


def run_test(test_module, model: nn.Module, dtype: torch.dtype) -> list[torch.Tensor]:
    """The public test() on the test videos as its loader yields them ((1, T, crops, D + 1), name); returns
    each video's snippet scores."""
    loader = [
        (with_magnitude(snippet_features(STREAMS["test"] + n, [0], CROPS, length, DIM).transpose(1, 2).to(dtype)),
         [f"video{n}"])
        for n, length in enumerate(TEST_LENGTHS)
    ]
    labels = np.zeros(16 * sum(TEST_LENGTHS))
    labels[16 * 10 : 16 * 20] = 1  # made up: its AUC needs both classes
    seen = {}

    def roc_curve(truth, scores):
        seen["scores"] = scores
        return public_roc_curve(truth, scores)

    public_roc_curve = test_module.roc_curve
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(test_module, "roc_curve", roc_curve):
        np.save(Path(folder) / "gt.npy", labels)
        test_module.test(loader, model, argparse.Namespace(gt=str(Path(folder) / "gt.npy")), torch.device("cpu"))
    scores = torch.as_tensor(np.asarray(seen["scores"]))[::16]  # test() repeats each score 16 times
    return list(scores.split(TEST_LENGTHS))


def training_batches(dtype: torch.dtype) -> tuple[tuple, tuple]:
    """The normal and abnormal (features, labels) batches as the public loaders yield them."""
    videos = snippet_features(STREAMS["train"], [0] * PER_CLASS + [1] * PER_CLASS, CROPS, SEGMENTS, DIM)
    videos = with_magnitude(videos.to(dtype))
    return ((videos[:PER_CLASS], torch.zeros(PER_CLASS, dtype=dtype)),
            (videos[PER_CLASS:], torch.ones(PER_CLASS, dtype=dtype)))


def run_train(train_module, model: nn.Module, dtype: torch.dtype) -> dict:
    """One call of the public train() (one step); returns the forward outputs, the loss terms, BatchNorm
    statistics, gradients and updates."""
    masks = selection_mask(STREAMS["mask"], 2 * PER_CLASS, SEGMENTS, DROPOUT).to(dtype)  # normal rows first
    model.drop_out = FixedSelection([masks[PER_CLASS:], masks[:PER_CLASS]])  # the code draws abnormal first
    normal, abnormal = training_batches(dtype)
    terms: dict[str, torch.Tensor] = {}
    outputs: dict[str, object] = {}
    public_loss = train_module.mgfn_loss
    public_forward = public_loss.forward

    def recording_forward(self, *inputs):
        """The public mgfn_loss.forward, keeping its BCE and contrastive terms and its result."""
        self.criterion = Recording(self.criterion, terms, "cls")
        self.contrastive = Recording(self.contrastive, terms, "con", "con_n", "con_a")
        terms["mgfn"] = total = public_forward(self, *inputs)
        return total

    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)  # as main.py builds it
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    hooks = [model.register_forward_hook(lambda _m, _i, out: outputs.setdefault("forward", out)),
             model.to_logits.register_forward_hook(lambda _m, _i, out: outputs.setdefault("features", out))]
    with (
        mock.patch.object(public_loss, "forward", recording_forward),
        mock.patch.object(train_module, "sparsity", recorded(train_module.sparsity, terms, "sparse")),
        mock.patch.object(train_module, "smooth", recorded(train_module.smooth, terms, "smooth")),
    ):
        cost, _, _ = train_module.train([normal], [abnormal], model, PER_CLASS, optimizer, torch.device("cpu"))
    for hook in hooks:
        hook.remove()
    terms["loss"] = torch.tensor(cost, dtype=torch.float64)

    score_abnormal, score_normal, abnormal_features, normal_features, scores = outputs["forward"]
    scores = scores.detach().squeeze(-1)
    # The magnitudes MSNSD selects by: crop mean of the L2 norms of the final (LayerNorm) features.
    features = outputs["features"].detach()
    magnitudes = torch.linalg.vector_norm(features, dim=2).view(2 * PER_CLASS, CROPS, -1).mean(dim=1)
    masked = masks * magnitudes
    selected = masked.topk(K, dim=1).indices
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
            "selected_normal_features": normal_features.detach(),
            "selected_abnormal_features": abnormal_features.detach(),
            "selected_normal_l1": normal_features.detach().norm(p=1, dim=2),
            "selected_abnormal_l1": abnormal_features.detach().norm(p=1, dim=2),
        },
        "selected": selected.sort(dim=1).values,
        "selection_margin": float(((ordered[:, K - 1] - ordered[:, K]) / ordered[:, K - 1]).min()),
        "terms": {name: terms[name] for name in ("cls", "con", "con_n", "con_a", "mgfn", "smooth", "sparse", "loss")},
        "batchnorm": {name: b.clone() for name, b in model.named_buffers() if "running" in name},
        "grads": {name: p.grad.clone() for name, p in params.items()},
        "updates": {name: p.detach().double() - before[name].double() for name, p in params.items()},
    }


def run_original(original_module, model: nn.Module, dtype: torch.dtype) -> dict:
    """One call of the original train(): its smoothness, sparsity and total loss."""
    masks = selection_mask(STREAMS["mask"], 2 * PER_CLASS, SEGMENTS, DROPOUT).to(dtype)
    model.drop_out = FixedSelection([masks[PER_CLASS:], masks[:PER_CLASS]])
    normal, abnormal = training_batches(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    cost, smooth, sparse = original_module.train([normal], [abnormal], model, PER_CLASS, optimizer, torch.device("cpu"))
    return {name: torch.tensor(value, dtype=torch.float64)
            for name, value in (("smooth", smooth), ("sparse", sparse), ("loss", cost))}


def original_train(repo: Path) -> types.ModuleType:
    """train.py at ORIGINAL, read from the checkout's history and run as a module beside the others."""
    source = subprocess.run(["git", "-C", str(repo), "show", f"{ORIGINAL}:train.py"], capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("train_original")
    module.__file__ = f"train.py@{ORIGINAL}"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def run(modules, dtype: torch.dtype) -> tuple[dict, list[list]]:
    mgfn_module, train_module, test_module, original_module = modules
    model, rows = public_model(mgfn_module, dtype)
    test_scores = run_test(test_module, model, dtype)  # before training: the rule's BatchNorm statistics
    result = run_train(train_module, model, dtype)
    original = run_original(original_module, public_model(mgfn_module, dtype)[0], dtype)
    return {**result, "original": original, "test_scores": test_scores}, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {CODE} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write")
    args = parser.parse_args()
    repo = checked_repository(args.repo.resolve(), CODE, COMMIT)
    torch.set_num_threads(1)
    torch.Tensor.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(repo))
    sys.modules["visdom"] = types.ModuleType("visdom")
    sys.argv = [sys.argv[0], "--batch_size", str(PER_CLASS)]  # the public modules parse options on import
    with mock.patch.object(torch, "set_default_tensor_type", lambda _type: None):
        import test as test_module
        import train as train_module
        from models import mgfn as mgfn_module

        original_module = original_train(repo)

    modules = (mgfn_module, train_module, test_module, original_module)
    fp32, rows = run(modules, torch.float32)
    fp64, _ = run(modules, torch.float64)
    if not torch.equal(fp32["selected"], fp64["selected"]):
        sys.exit("the float32 and float64 runs selected different snippets; change the masks")
    with torch.device("meta"):
        published = sum(p.numel() for p in mgfn_module.mgfn().parameters())
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "original_code": f"{CODE}@{ORIGINAL}: train.py (group \"original\")",
        "rule": {"values": "tests/reference/fixture_rule.py", "streams": STREAMS, "mask_p": DROPOUT},
        "shape": {"per_class": PER_CLASS, "crops": CROPS, "segments": SEGMENTS, "feature_dim": DIM, "k": K,
                  "dims": list(DIMS), "test_lengths": list(TEST_LENGTHS)},
        "optimizer": {"lr": LR, "weight_decay": WEIGHT_DECAY},
        "parameter_count": {"published": published,
                            "fixture": sum(p.numel() for p in mgfn_module.mgfn(dims=DIMS).parameters())},
        "public_state": rows,
        "selected": fp64["selected"].tolist(),
        "selection_margin": min(fp32["selection_margin"], fp64["selection_margin"]),
        **fixture_groups(fp32, fp64, GROUPS),
    }
    write_json(args.out, fixture)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
