"""Write the RTFM public-checkpoint fixture (tests/unit/data/rtfm_checkpoint_reference.json) by running the public
RTFM code.

The public code: Tian et al.'s RTFM at the commit rtfm_reference.py pins. Get it with

    git clone https://github.com/tianyu0207/RTFM && git -C RTFM checkout cf938f4c38c908ba19936ecfc60d54de7da0d8b9

It needs torch, numpy, scikit-learn and matplotlib (imported by its test_10crop.py). Run, from the root of
this repository (one thread: the numbers depend on the summation order):

    OMP_NUM_THREADS=1 python tests/reference/rtfm_checkpoint_reference.py --repo RTFM

What it runs, unmodified: the public ``model.Model(2048, 32)`` as ``main.py`` builds it with its default
options (feature size 2048, batch size 32), with every parameter and buffer set by the rule of
fixture_rule.py; saves it as ``main.py`` saves its checkpoints, ``torch.save(model.state_dict(), path)``, in
a temporary folder; loads that file into a second public Model (``load_state_dict(torch.load(path))``);
and runs its ``test_10crop.test`` on three 10-crop test videos of different lengths (eval mode), in float32
and, with the same model and inputs in float64, in float64. ``test`` repeats each snippet score 16 times (one
per frame); the fixture keeps one per snippet.

The public model's widths are fixed (its ``Aggregate`` hard-codes 2048 input channels and 512-channel
branches), so its checkpoint is 99 MB: the fixture does not hold the file but its content, which the rule
determines: the state_dict's names, shapes and kinds in the file's order and `fixture_rule.state_digest` of
the saved file. The unit test rebuilds the file from the rule, checks its digest against this one, and
loads it through vadbench's importer. Neutralised at run time (listed in the fixture's ``produced_by``):
``Tensor.cuda`` is the identity; the visdom ``viz`` is a stub that keeps the test scores; ``test`` reads
its frame labels from list/gt-sh.npy in the working directory, so it runs in a temporary folder holding
made-up labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from fixture_rule import record, snippet_features, state_digest, state_value
from public_run import checked_repository, produced_by, snippet_scores, state_kinds, write_json
from rtfm_reference import CODE, COMMIT, Viz
from torch import nn

SCRIPT = "tests/reference/rtfm_checkpoint_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "rtfm_checkpoint_reference.json"

#: main.py's defaults: Model(args.feature_size, args.batch_size); the test loader's 10 crops.
DIM, BATCH_SIZE, CROPS = 2048, 32, 10
TEST_LENGTHS = (37, 12, 3)
#: u() stream of the test videos (tensor numbers above any state_dict index).
STREAM = 5000
NEUTRALISED = [
    "Tensor.cuda: identity (CPU run)",
    "viz: a stub keeping the test scores",
    "test_10crop.test: run in a temporary folder whose list/gt-sh.npy holds made-up frame labels",
]


def saved_and_loaded(model_module, folder: Path) -> tuple[nn.Module, list[list], str]:
    """A public Model with the rule's values, saved as main.py saves it and loaded into a second public Model;
    that model, the state as [name, shape, kind] rows, and the digest of the saved file's content."""
    model = model_module.Model(DIM, BATCH_SIZE)
    kinds = state_kinds(model)
    rows = [[name, list(tensor.shape), kinds[name]] for name, tensor in model.state_dict().items()]
    model.load_state_dict({name: state_value(kind, k, shape) for k, (name, shape, kind) in enumerate(rows)})
    path = folder / "rtfmfinal.pkl"
    torch.save(model.state_dict(), path)  # main.py: torch.save(model.state_dict(), './ckpt/' + ... + 'final.pkl')
    saved = torch.load(path)
    loaded = model_module.Model(DIM, BATCH_SIZE)
    loaded.load_state_dict(saved)
    return loaded, rows, state_digest(saved)


def public_test_scores(test_module, model: nn.Module, dtype: torch.dtype) -> list[torch.Tensor]:
    """The public test() on the test videos, (1, T, crops, D) each as its loader yields them; each video's
    snippet scores (test() repeats each 16 times)."""
    loader = [snippet_features(STREAM + n, [0], CROPS, length, DIM).transpose(1, 2).to(dtype)
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
            test_module.test(loader, model.to(dtype), argparse.Namespace(dataset="shanghai"), viz,
                             torch.device("cpu"))
        finally:
            os.chdir(cwd)
    return snippet_scores(np.asarray(viz.values["scores"]), TEST_LENGTHS)


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

    with tempfile.TemporaryDirectory() as folder:
        model, rows, digest = saved_and_loaded(model_module, Path(folder))
    fp32 = public_test_scores(test_module, model, torch.float32)
    fp64 = public_test_scores(test_module, model, torch.float64)
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "rule": {"values": "tests/reference/fixture_rule.py", "test_stream": STREAM},
        "shape": {"crops": CROPS, "feature_dim": DIM, "batch_size": BATCH_SIZE, "test_lengths": list(TEST_LENGTHS)},
        "checkpoint": {"saved_by": "torch.save(model.state_dict(), path) (main.py)", "state_digest": digest},
        "public_state": rows,
        "test_scores": [record(a, b) for a, b in zip(fp32, fp64, strict=True)],
    }
    write_json(args.out, fixture)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
