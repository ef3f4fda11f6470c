"""Writes tests/unit/data/ur_dmu_public_checkpoint.{pkl,json}: a checkpoint in the public UR-DMU code's own format
and the public test function's scores with it, by running that code, unmodified, at its pinned commit.

Get the code as for tests/reference/ur_dmu_reference.py (``git clone https://github.com/henrryzh1/UR-DMU &&
git -C UR-DMU checkout 40cfdf5f8bebbc3b59373935f9d6ca00e2f32bbc``; packages: torch, numpy, einops and
scikit-learn, which xd_test.py imports), then, from the root of a vadbench checkout (another commit is refused):

    OMP_NUM_THREADS=1 python tests/reference/ur_dmu_checkpoint_reference.py --repo UR-DMU

What runs: the public ``WSAD`` (model.py) at a small width, so that the checkpoint stays small. WSAD's
constructor writes its width, 512, as a literal; the model is built by it and its parts are then replaced by
the same public classes at the width of SIZES, composed as the constructor composes them: ``Temporal(D, W)``,
``ADCLS_head(2 W, 1)`` (its hidden 128 is the code's literal), ``Memory_Unit(nums=60, dim=W)`` twice,
``Transformer(W, 2, heads, head_dim, mlp_dim, dropout=0.5)`` and ``nn.Sequential(nn.Linear(W, W))`` for
``encoder_mu`` and ``encoder_var``. Its forward is the code's. Its weights are set by the weight rule of
tests/reference/checkpoint_videos.py and saved as ucf_main.py and xd_main.py save them,
``torch.save(net.state_dict(), path)``. Then xd_test.py's ``test`` runs with ``model_file`` = that file (it loads
it with its own ``net.load_state_dict(torch.load(model_file))``), eval mode, ``flag = "Test"``, on a loader of
the test videos (each one batch of its 5 crops, as XD-Violence's test loader gives them), and the scores per
video are read from its ``wind.lines("scores", frame_predict)`` call (every 16th frame score). Once as the code
runs, in float32; once with ``torch.set_default_dtype(torch.float64)`` (the model is then built in float64 and
the checkpoint loaded into it) and the features cast to float64.

Neutralised at run time (the code's files are not changed): ``Tensor.cuda`` and ``Module.cuda`` return their
object (CPU); ``ipdb`` and ``visdom`` are stub modules; the ``wind`` argument is a recorder; the ground truth
xd_test.py reads (frame_label/xd_gt.npy) is written to a scratch working directory (only the metrics, not the
scores, read it).
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

REPOSITORY = "henrryzh1/UR-DMU"
COMMIT = "40cfdf5f8bebbc3b59373935f9d6ca00e2f32bbc"
SCRIPT = "tests/reference/ur_dmu_checkpoint_reference.py"
CHECKPOINT = rule.DATA / "ur_dmu_public_checkpoint.pkl"
FIXTURE = rule.DATA / "ur_dmu_public_checkpoint.json"
#: Feature width D, model width W, attention heads and their width, feed-forward width, memory slots.
SIZES = {"D": 64, "width": 32, "heads": 2, "head_dim": 16, "mlp_dim": 48, "slots": 60, "head_hidden": 128}


def public_modules(repo: Path) -> types.SimpleNamespace:
    """The public model.py, memory.py, translayer.py and xd_test.py, imported with the stubs and the CPU patch."""
    sys.modules["ipdb"] = types.ModuleType("ipdb")
    visdom = types.ModuleType("visdom")
    visdom.Visdom = object  # type: ignore[attr-defined]
    sys.modules["visdom"] = visdom
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    sys.path.insert(0, str(repo))
    import memory
    import model
    import translayer
    import xd_test

    return types.SimpleNamespace(model=model, memory=memory, translayer=translayer, xd_test=xd_test)


def small_wsad(public: types.SimpleNamespace) -> nn.Module:
    """The public WSAD with its parts at the widths of SIZES (see the module docstring)."""
    d, w, slots = SIZES["D"], SIZES["width"], SIZES["slots"]
    net = public.model.WSAD(d, flag="Train", a_nums=slots, n_nums=slots)
    net.embedding = public.model.Temporal(d, w)
    net.cls_head = public.model.ADCLS_head(2 * w, 1)
    net.Amemory = public.memory.Memory_Unit(nums=slots, dim=w)
    net.Nmemory = public.memory.Memory_Unit(nums=slots, dim=w)
    net.selfatt = public.translayer.Transformer(w, 2, SIZES["heads"], SIZES["head_dim"], SIZES["mlp_dim"], dropout=0.5)
    net.encoder_mu = nn.Sequential(nn.Linear(w, w))
    net.encoder_var = nn.Sequential(nn.Linear(w, w))
    return net


class Wind:
    """Stands in for the visdom window xd_test.py draws on; keeps the frame scores it is given."""

    def __init__(self) -> None:
        self.scores: np.ndarray | None = None

    def plot_lines(self, name, y, **kwargs) -> None:
        pass

    def lines(self, name, y, x=None) -> None:
        if name == "scores":
            self.scores = np.asarray(y)


class Loader(list):
    """The test videos as xd_test.py walks them: one batch of 5 crops per video, ``len(dataset)`` 5 a video."""

    @property
    def dataset(self) -> range:
        return range(5 * len(self))


def public_scores(public: types.SimpleNamespace, dtype: torch.dtype) -> list[list[float]]:
    """The snippet scores of each test video from xd_test.py's ``test`` with the saved checkpoint."""
    videos = [rule.feature_video(n, crops, steps, SIZES["D"]).to(dtype) for n, (crops, steps) in enumerate(rule.VIDEOS)]
    loader = Loader((video, torch.full((len(video),), float(n % 2))) for n, video in enumerate(videos))
    wind, cwd = Wind(), os.getcwd()
    torch.set_default_dtype(dtype)
    try:
        net = small_wsad(public)
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            frames = sum(16 * steps for _, steps in rule.VIDEOS)
            Path("frame_label").mkdir()
            np.save("frame_label/xd_gt.npy", (np.arange(frames) % 48 < 16).astype(np.float64))
            info: dict = {"step": [], "auc": [], "ap": [], "ac": []}
            public.xd_test.test(net, None, wind, loader, info, 0, model_file=str(CHECKPOINT))
    finally:
        os.chdir(cwd)
        torch.set_default_dtype(torch.float32)
    assert wind.scores is not None, "xd_test.test drew no scores"
    ends = np.cumsum([16 * steps for _, steps in rule.VIDEOS])
    return [part[::16].tolist() for part in np.split(wind.scores, ends[:-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    args = parser.parse_args()
    repo = checked_repository(args.repo, REPOSITORY, COMMIT).resolve()
    torch.set_num_threads(1)
    public = public_modules(repo)
    net = small_wsad(public)
    rule.set_random_state(net)
    torch.save(net.state_dict(), CHECKPOINT)  # as ucf_main.py and xd_main.py save
    rule.write_fixture(FIXTURE, {
        "produced_by": produced_by(SCRIPT, REPOSITORY, COMMIT, [
            "Tensor.cuda and Module.cuda: identity (CPU)", "ipdb, visdom: stub modules",
            "wind: a recorder of the scores xd_test.test draws",
            "frame_label/xd_gt.npy: a stand-in in a scratch folder (metrics only)",
            "float64 run: torch.set_default_dtype(torch.float64), features cast to float64"]),
        "ran": "model.py WSAD at the widths of 'sizes' (its parts replaced by the public classes at those widths), "
        "torch.save(net.state_dict()) as ucf_main.py saves, xd_test.py test(model_file=checkpoint)",
        "checkpoint": CHECKPOINT.name,
        "sizes": SIZES,
        "weight_rule": rule.WEIGHT_RULE,
        "seed": rule.SEED,
        "feature_rule": rule.FEATURE_RULE,
        "videos": rule.VIDEOS,
        "float32": {"scores": public_scores(public, torch.float32)},
        "float64": {"scores": public_scores(public, torch.float64)},
    })


if __name__ == "__main__":
    main()
