"""Writes tests/unit/data/bn_wvad_public_checkpoint.{pkl,json}: a checkpoint in the public BN-WVAD code's own format
and the public test function's scores with it, by running that code, unmodified, at its pinned commit.

Get the code as for tests/reference/bn_wvad_reference.py (``git clone https://github.com/cool-xuan/BN-WVAD &&
git -C BN-WVAD checkout 4fa3a5dfb139d5c97a0511016110f15058d7c235``; packages: torch, numpy, einops and
scikit-learn, which test.py imports), then, from the root of a vadbench checkout (another commit is refused):

    OMP_NUM_THREADS=1 python tests/reference/bn_wvad_checkpoint_reference.py --repo BN-WVAD

What runs: the public ``WSAD`` (models/) with the public options' defaults (``options.parse_args()`` without
arguments: ratios 16 and 32, kernel sizes 1) at a small width, so that the checkpoint stays small. WSAD's
constructor writes its width, 512, as a literal; the model is built by it and its parts are then replaced by
the same public classes at the width of SIZES, composed as the constructor composes them:
``NormalHead(in_channel=W, ratios=args.ratios, kernel_sizes=args.kernel_sizes)``, ``Temporal(D, W)`` and
``Transformer(W, 2, heads, head_dim, mlp_dim, dropout=0)``. Its forward is the code's. Its weights and
BatchNorm statistics are set by the weight rule of tests/reference/checkpoint_videos.py; then
``BATCHNORM_PASSES`` forward passes in training mode (``flag = "Test"``, no gradient) on videos of that file's
feature rule (numbers 10, 11, ... of (5, 20)) update the head's running statistics and step counts as training
does. It is saved as main.py saves it, ``torch.save(net.state_dict(), path)``. Then test.py's ``test`` runs with
``model_file`` = that file (loaded by its own ``net.load_state_dict(torch.load(model_file))``), eval mode, on a
loader of the test videos (each one batch of its 5 crops, as XD-Violence's test loader gives them); the scores
per video are what its ``get_predicts`` returns (every 16th frame score). Once as the code runs, in float32;
once with ``torch.set_default_dtype(torch.float64)`` (the model is then built in float64 and the checkpoint
loaded into it) and the features cast to float64.

Neutralised at run time (the code's files are not changed): ``Tensor.cuda`` and ``Module.cuda`` return their
object (CPU); ``ipdb`` is a stub module; test.py's ``get_predicts`` is wrapped to keep what it returns; the
ground truth test.py reads (frame_label/xd_gt.npy) is written to a scratch working directory (only the
metrics, not the scores, read it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import types
from pathlib import Path

import checkpoint_videos as rule
import numpy as np
import torch
from public_run import checked_repository, produced_by
from torch import nn

REPOSITORY = "cool-xuan/BN-WVAD"
COMMIT = "4fa3a5dfb139d5c97a0511016110f15058d7c235"
SCRIPT = "tests/reference/bn_wvad_checkpoint_reference.py"
CHECKPOINT = rule.DATA / "bn_wvad_public_checkpoint.pkl"
FIXTURE = rule.DATA / "bn_wvad_public_checkpoint.json"
#: Feature width D, model width W, attention heads and their width, feed-forward width.
SIZES = {"D": 64, "width": 64, "heads": 2, "head_dim": 16, "mlp_dim": 48}
#: Training-mode forward passes that move the BatchNorm statistics away from the rule's values.
BATCHNORM_PASSES = 3


def public_modules(repo: Path) -> types.SimpleNamespace:
    """The public options, models and test modules, imported with the stub and the CPU patch."""
    sys.modules["ipdb"] = types.ModuleType("ipdb")
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    sys.path.insert(0, str(repo))
    import models
    import options
    import test
    from models import model, normal_head, translayer

    return types.SimpleNamespace(options=options, models=models, model=model, normal_head=normal_head,
                                 translayer=translayer, test=test)


def public_args(options: types.ModuleType) -> argparse.Namespace:
    """The public defaults: ``options.parse_args()`` without arguments (it creates folders in the working
    directory, so it runs in a scratch one)."""
    argv, cwd = sys.argv, os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        sys.argv = ["main.py"]
        os.chdir(scratch)
        try:
            return options.parse_args()
        finally:
            os.chdir(cwd)
            sys.argv = argv


def small_wsad(public: types.SimpleNamespace, args: argparse.Namespace) -> nn.Module:
    """The public WSAD with its parts at the widths of SIZES (see the module docstring)."""
    d, w = SIZES["D"], SIZES["width"]
    net = public.models.WSAD(d, flag="Train", args=args)
    net.normal_head = public.normal_head.NormalHead(in_channel=w, ratios=args.ratios, kernel_sizes=args.kernel_sizes)
    net.embedding = public.model.Temporal(d, w)
    net.selfatt = public.translayer.Transformer(w, 2, SIZES["heads"], SIZES["head_dim"], SIZES["mlp_dim"], dropout=0)
    return net


def trained_statistics(net: nn.Module) -> None:
    """BATCHNORM_PASSES forward passes in training mode: the head's running statistics move as training moves
    them."""
    net.train()
    net.flag = "Test"
    with torch.no_grad():
        for n in range(BATCHNORM_PASSES):
            net(rule.feature_video(10 + n, 5, 20, SIZES["D"]))


class Loader(list):
    """The test videos as test.py walks them: one batch of 5 crops per video, ``len(dataset)`` 5 a video."""

    @property
    def dataset(self) -> range:
        return range(5 * len(self))


def public_scores(public: types.SimpleNamespace, args: argparse.Namespace, dtype: torch.dtype) -> list[list[float]]:
    """The snippet scores of each test video from test.py's ``test`` with the saved checkpoint."""
    videos = [rule.feature_video(n, crops, steps, SIZES["D"]).to(dtype) for n, (crops, steps) in enumerate(rule.VIDEOS)]
    loader = Loader((video, torch.full((len(video),), float(n % 2))) for n, video in enumerate(videos))
    predicts: list[np.ndarray] = []
    get_predicts = public.test.get_predicts

    def kept(*inputs):
        predicts.append(get_predicts(*inputs))
        return predicts[-1]

    cwd = os.getcwd()
    torch.set_default_dtype(dtype)
    public.test.get_predicts = kept
    try:
        net = small_wsad(public, args)
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            frames = sum(16 * steps for _, steps in rule.VIDEOS)
            Path("frame_label").mkdir()
            np.save("frame_label/xd_gt.npy", (np.arange(frames) % 48 < 16).astype(np.float64))
            public.test.test(net, loader, {"step": [], "AUC": [], "AP": []}, 0, model_file=str(CHECKPOINT))
    finally:
        public.test.get_predicts = get_predicts
        os.chdir(cwd)
        torch.set_default_dtype(torch.float32)
    ends = np.cumsum([16 * steps for _, steps in rule.VIDEOS])
    return [part[::16].tolist() for part in np.split(predicts[0], ends[:-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    repo = checked_repository(parser.parse_args().repo, REPOSITORY, COMMIT).resolve()
    torch.set_num_threads(1)
    public = public_modules(repo)
    args = public_args(public.options)
    net = small_wsad(public, args)
    rule.set_random_state(net)
    trained_statistics(net)
    torch.save(net.state_dict(), CHECKPOINT)  # as main.py saves
    rule.write_fixture(FIXTURE, {
        "produced_by": produced_by(SCRIPT, REPOSITORY, COMMIT, [
            "Tensor.cuda and Module.cuda: identity (CPU)", "ipdb: stub module",
            "test.get_predicts: wrapped to keep the frame scores it returns",
            "frame_label/xd_gt.npy: a stand-in in a scratch folder (metrics only)",
            "float64 run: torch.set_default_dtype(torch.float64), features cast to float64"]),
        "ran": "models WSAD at the widths of 'sizes' with options.parse_args() defaults (its parts replaced by the "
        "public classes at those widths), BatchNorm statistics after 'batchnorm_passes' training-mode passes, "
        "torch.save(net.state_dict()) as main.py saves, test.py test(model_file=checkpoint)",
        "checkpoint": CHECKPOINT.name,
        "sizes": {**SIZES, "ratios": args.ratios, "kernel_sizes": args.kernel_sizes},
        "weight_rule": rule.WEIGHT_RULE,
        "seed": rule.SEED,
        "batchnorm_passes": BATCHNORM_PASSES,
        "feature_rule": rule.FEATURE_RULE,
        "videos": rule.VIDEOS,
        "float32": {"scores": public_scores(public, args, torch.float32)},
        "float64": {"scores": public_scores(public, args, torch.float64)},
    })


if __name__ == "__main__":
    main()
