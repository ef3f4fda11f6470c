"""Writes tests/unit/data/pel4vad_public_checkpoint.{pkl,json}: a checkpoint in the public PEL4VAD code's own format
and the public inference function's scores with it, by running that code, unmodified, at its pinned commit.

Get the code as for tests/reference/pel4vad_reference.py (``git clone https://github.com/yujiangpu20/PEL4VAD &&
git -C PEL4VAD checkout eeb31f4ca10b805996fb39e5c395f1a8dc119096``; packages: torch, numpy, scipy and
scikit-learn), then, from the root of a vadbench checkout (another commit is refused):

    OMP_NUM_THREADS=1 python tests/reference/pel4vad_checkpoint_reference.py --repo PEL4VAD

What runs: the public ``XModel`` (model.py, modules.py, layers.py) of the UCF-Crime configuration of configs.py
(``build_config("ucf")``: TCA window 9, gamma 0.6, bias 0.2, power and L2 norm, causal kernel 9, slide
smoothing of window 7) with the widths of SIZES (``cfg.feat_dim``, ``cfg.hid_dim``, ``cfg.out_dim``: small, so
that the checkpoint stays small; the code takes all three from the config). Its weights are set by the weight
rule of tests/reference/checkpoint_videos.py and saved as main.py saves them, ``torch.save(model.state_dict(),
path)``. Then, as main.py's infer mode does, a new ``XModel(cfg)`` gets the file through main.py's
``load_checkpoint`` and ``infer_func`` (infer.py: eval mode, crops averaged after the sigmoid, the smoothing of
utils.py, cut to the video's length) runs on a loader of the test videos (each one batch of its 5 crops, as
the test loader gives them); the scores per video are read from its ``roc_curve`` call (every 16th frame
score). Once as the code runs, in float32; once with ``torch.set_default_dtype(torch.float64)``, the model
cast with ``.double()`` before the checkpoint is loaded into it, and the features in float64.

Neutralised at run time (the code's files are not changed): ``Tensor.cuda`` returns the tensor (CPU);
``roc_curve`` as infer.py sees it is wrapped to keep the frame scores it is given; the logger is a silent
``logging`` logger; float64 run only: ``Tensor.float`` returns the tensor in float64, because ``infer_func``
casts its input with ``.float()``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
from pathlib import Path

import checkpoint_videos as rule
import numpy as np
import torch
from public_run import checked_repository, produced_by

REPOSITORY = "yujiangpu20/PEL4VAD"
COMMIT = "eeb31f4ca10b805996fb39e5c395f1a8dc119096"
SCRIPT = "tests/reference/pel4vad_checkpoint_reference.py"
CHECKPOINT = rule.DATA / "pel4vad_public_checkpoint.pkl"
FIXTURE = rule.DATA / "pel4vad_public_checkpoint.json"
#: The configuration of configs.py, and its widths: feature width D (feat_dim), TCA width (hid_dim), out_dim.
CONFIG = "ucf"
SIZES = {"D": 64, "hid_dim": 16, "out_dim": 24}


def public_modules(repo: Path) -> types.SimpleNamespace:
    """The public configs, model, main and infer modules, imported with the CPU patch."""
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    sys.path.insert(0, str(repo))
    import configs
    import infer
    import main
    import model

    return types.SimpleNamespace(configs=configs, model=model, main=main, infer=infer)


def public_config(public: types.SimpleNamespace):
    """configs.py's configuration CONFIG at the widths of SIZES."""
    cfg = public.configs.build_config(CONFIG)
    cfg.feat_dim, cfg.hid_dim, cfg.out_dim = SIZES["D"], SIZES["hid_dim"], SIZES["out_dim"]
    return cfg


def public_scores(public: types.SimpleNamespace, cfg, dtype: torch.dtype) -> list[list[float]]:
    """The snippet scores of each test video from infer.py's ``infer_func`` with the saved checkpoint, loaded by
    main.py's ``load_checkpoint``."""
    videos = [rule.feature_video(n, crops, steps, SIZES["D"]).to(dtype) for n, (crops, steps) in enumerate(rule.VIDEOS)]
    loader = [(video, f"video{n}") for n, video in enumerate(videos)]
    frames = np.concatenate([np.full(16 * steps, float(n == 1)) for n, (_, steps) in enumerate(rule.VIDEOS)])
    logger = logging.getLogger("pel4vad-checkpoint-reference")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    kept: list[np.ndarray] = []
    roc_curve, to_float = public.infer.roc_curve, torch.Tensor.float

    def reading(truth, scores, *args, **kwargs):
        kept.append(np.asarray(scores))
        return roc_curve(truth, scores, *args, **kwargs)

    public.infer.roc_curve = reading
    torch.set_default_dtype(dtype)
    if dtype == torch.float64:
        torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.float64)  # type: ignore[method-assign]
    try:
        net = public.model.XModel(cfg).to(dtype)
        public.main.load_checkpoint(net, str(CHECKPOINT), logger)
        public.infer.infer_func(net, loader, frames, logger, cfg)
    finally:
        public.infer.roc_curve = roc_curve
        torch.Tensor.float = to_float  # type: ignore[method-assign]
        torch.set_default_dtype(torch.float32)
    ends = np.cumsum([16 * steps for _, steps in rule.VIDEOS])
    return [part[::16].tolist() for part in np.split(kept[0], ends[:-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    repo = checked_repository(parser.parse_args().repo, REPOSITORY, COMMIT).resolve()
    torch.set_num_threads(1)
    public = public_modules(repo)
    cfg = public_config(public)
    net = public.model.XModel(cfg)
    rule.set_random_state(net)
    torch.save(net.state_dict(), CHECKPOINT)  # as main.py saves
    rule.write_fixture(FIXTURE, {
        "produced_by": produced_by(SCRIPT, REPOSITORY, COMMIT, [
            "Tensor.cuda: identity (CPU)", "infer.roc_curve: wrapped to keep the frame scores it is given",
            "logger: a silent logging logger",
            "float64 run: torch.set_default_dtype(torch.float64), model.double() before loading, features in "
            "float64, Tensor.float returns float64"]),
        "ran": f"configs.py build_config({CONFIG!r}) at the widths of 'sizes', model.py XModel, "
        "torch.save(model.state_dict()) as main.py saves, main.py load_checkpoint, infer.py infer_func",
        "checkpoint": CHECKPOINT.name,
        "sizes": {**SIZES, **{name: getattr(cfg, name) for name in (
            "win_size", "gamma", "bias", "norm", "t_step", "temp", "smooth", "kappa", "head_num")}},
        "weight_rule": rule.WEIGHT_RULE,
        "seed": rule.SEED,
        "feature_rule": rule.FEATURE_RULE,
        "videos": rule.VIDEOS,
        "float32": {"scores": public_scores(public, cfg, torch.float32)},
        "float64": {"scores": public_scores(public, cfg, torch.float64)},
    })


if __name__ == "__main__":
    main()
