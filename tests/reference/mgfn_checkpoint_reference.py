"""Write the MGFN public-checkpoint fixture (tests/unit/data/mgfn_checkpoint_reference.json) by running the public
MGFN code.

The public code: Chen et al.'s MGFN at the commit mgfn_reference.py pins (the repository's name ends in a
dot). Get it with

    git clone https://github.com/carolchenyx/MGFN. MGFN && git -C MGFN checkout 98e9389e7f7f52aad401c81457fc286653de9990

It needs torch, numpy, einops, scikit-learn and matplotlib (imported by its test.py) and tqdm. Run, from
the root of this repository (one thread: the numbers depend on the summation order):

    OMP_NUM_THREADS=1 python tests/reference/mgfn_checkpoint_reference.py --repo MGFN

What it runs, unmodified, with the default options: the public ``models.mgfn.mgfn(dims=(64, 128, 256))``
(as mgfn_reference.py: the published depths, block types and first two stage widths, a narrower last stage)
with every parameter and buffer set by the rule of fixture_rule.py; saves it as ``main.py`` saves its
checkpoints, ``torch.save(model.state_dict(), path)``, in a temporary folder; loads that file into a second
public model as the public test.py does
(``load_state_dict({k.replace('module.', ''): v for k, v in torch.load(path).items()})``); and runs its
``test.test`` on three 10-crop test videos of different lengths (eval mode), with the magnitude channel
appended as the public dataset appends it, in float32 and, with the same model and inputs in float64, in
float64. ``test`` repeats each snippet score 16 times (one per frame); the fixture keeps one per snippet.

The file cannot be small: the input width 2048 is fixed by the code (``x[:, :2048]``), and the public
``dim_head`` option changes only the number of heads (each head stays 64 channels wide), so the first stage
is at least 64 channels and the feature embedding alone 1.5 MB (12 MB at these widths, 115 MB at the
published ones). The fixture holds the file's content instead, which the rule determines: the state_dict's
names, shapes and kinds in the file's order and `fixture_rule.state_digest` of the saved file. The unit test
rebuilds the file from the rule, checks its digest against this one, and loads it through vadbench's
importer.

Neutralised at run time (listed in the fixture's ``produced_by``): ``Tensor.cuda`` is the identity;
``torch.set_default_tensor_type`` is ignored while the code is imported (it asks for CUDA tensors);
``visdom`` (imported, unused) is an empty module; ``test`` reads its frame labels from the ``--gt`` option,
a temporary file of made-up labels, and its scores are taken from its call of ``roc_curve``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from fixture_rule import record, snippet_features, state_digest, state_value
from mgfn_reference import CODE, COMMIT, with_magnitude
from public_run import checked_repository, produced_by, snippet_scores, state_kinds, write_json
from torch import nn

SCRIPT = "tests/reference/mgfn_checkpoint_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "mgfn_checkpoint_reference.json"

DIM, CROPS = 2048, 10
DIMS = (64, 128, 256)
TEST_LENGTHS = (37, 12, 3)
#: u() stream of the test videos (tensor numbers above any state_dict index).
STREAM = 5000
NEUTRALISED = [
    "Tensor.cuda: identity (CPU run)",
    "torch.set_default_tensor_type: ignored while the public modules are imported (they ask for CUDA tensors)",
    "visdom: an empty module (imported by utils/utils.py, unused)",
    "test.test: --gt is a temporary file of made-up frame labels; its scores are read from its roc_curve call",
]


def saved_and_loaded(mgfn_module, folder: Path) -> tuple[nn.Module, list[list], str]:
    """A public mgfn with the rule's values, saved as main.py saves it and loaded into a second public mgfn as
    test.py loads it; that model, the state as [name, shape, kind] rows, and the digest of the saved file's
    content."""
    model = mgfn_module.mgfn(dims=DIMS)
    kinds = state_kinds(model)
    rows = [[name, list(tensor.shape), kinds[name]] for name, tensor in model.state_dict().items()]
    model.load_state_dict({name: state_value(kind, k, shape) for k, (name, shape, kind) in enumerate(rows)})
    path = folder / "mgfnfinal.pkl"
    torch.save(model.state_dict(), path)  # main.py: torch.save(model.state_dict(), savepath + ... + '-i3d.pkl')
    saved = torch.load(path)
    loaded = mgfn_module.mgfn(dims=DIMS)
    loaded.load_state_dict({k.replace("module.", ""): v for k, v in saved.items()})  # as test.py loads it
    return loaded, rows, state_digest(saved)


def public_test_scores(test_module, model: nn.Module, dtype: torch.dtype) -> list[torch.Tensor]:
    """The public test() on the test videos as its loader yields them ((1, T, crops, D + 1), name); each
    video's snippet scores (test() repeats each 16 times)."""
    loader = [
        (with_magnitude(snippet_features(STREAM + n, [0], CROPS, length, DIM).transpose(1, 2).to(dtype)),
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
        test_module.test(loader, model.to(dtype), argparse.Namespace(gt=str(Path(folder) / "gt.npy")),
                         torch.device("cpu"))
    return snippet_scores(np.asarray(seen["scores"]), TEST_LENGTHS)


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
    sys.argv = sys.argv[:1]  # the public modules parse options on import: the defaults
    with mock.patch.object(torch, "set_default_tensor_type", lambda _type: None):
        import test as test_module
        from models import mgfn as mgfn_module

    with tempfile.TemporaryDirectory() as folder:
        model, rows, digest = saved_and_loaded(mgfn_module, Path(folder))
    fp32 = public_test_scores(test_module, model, torch.float32)
    fp64 = public_test_scores(test_module, model, torch.float64)
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "rule": {"values": "tests/reference/fixture_rule.py", "test_stream": STREAM},
        "shape": {"crops": CROPS, "feature_dim": DIM, "dims": list(DIMS), "test_lengths": list(TEST_LENGTHS)},
        "checkpoint": {"saved_by": "torch.save(model.state_dict(), path) (main.py)", "state_digest": digest},
        "public_state": rows,
        "test_scores": [record(a, b) for a, b in zip(fp32, fp64, strict=True)],
    }
    write_json(args.out, fixture)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
