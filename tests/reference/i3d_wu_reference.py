"""Writes tests/unit/data/i3d_wu_reference.json by running the public Inception I3D of piergiaj/pytorch-i3d,
unmodified, at its pinned commit: the network of Wu et al.'s 1024-d XD-Violence and UCF-Crime features.

Get the code (its checkpoints under models/ are not needed):

    git clone https://github.com/piergiaj/pytorch-i3d
    git -C pytorch-i3d checkout 05783d11f9632b25fe3d50395a9c9bb51f848d6d

Packages its pytorch_i3d.py needs: torch and numpy. Command, from the root of a vadbench checkout (it refuses
a checkout at another commit):

    OMP_NUM_THREADS=1 python tests/reference/i3d_wu_reference.py --repo pytorch-i3d

What runs: ``InceptionI3d(400, in_channels=3)`` as extract_features.py builds it, every state_dict entry set
by the name rule of extractor_weights_wu.py, ``eval()``, then ``extract_features`` on the rule's clip sets
(two 16x224x224 clips, as Wu et al.'s snippets; one 11x197x213 clip, whose odd sizes take the other branch of
the SAME-padding rule), on CPU with one thread, once in float32 and once in float64 (the same float32
parameters and clips cast to float64). Nothing of the public code is neutralised or patched. The fixture
holds the public state_dict's names and shapes (classifier included) and the flattened [B, 1024] outputs.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch
from extractor_weights_wu import clips, set_state
from public_run import checked_repository, produced_by, write_json

REPOSITORY = "piergiaj/pytorch-i3d"
COMMIT = "05783d11f9632b25fe3d50395a9c9bb51f848d6d"
SCRIPT = "tests/reference/i3d_wu_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "i3d_wu_reference.json"

#: The clip sets' shapes [B, 3, T, H, W], by set number.
CLIP_SHAPES = {"0": [2, 3, 16, 224, 224], "1": [1, 3, 11, 197, 213]}
RULES = {
    "value_rule": "extractor_weights_wu.state_value(name, shape) for every state_dict entry (see its docstring)",
    "input_rule": "extractor_weights_wu.clips(n, shape) for clip set n of clip_shapes",
    "float64_rule": "the float64 run casts the float32 parameters and clips to float64",
}


def public_module(repo: Path) -> types.ModuleType:
    """pytorch_i3d.py, imported from `repo` as it is."""
    sys.path.insert(0, str(repo))
    import pytorch_i3d

    return pytorch_i3d


def run(pytorch_i3d: types.ModuleType, dtype: torch.dtype) -> dict:
    """The flattened ``extract_features`` output of every clip set, in `dtype`."""
    model = pytorch_i3d.InceptionI3d(400, in_channels=3)
    set_state(model)
    model = model.to(dtype).eval()
    features = {}
    with torch.no_grad():
        for n, shape in CLIP_SHAPES.items():
            pooled = model.extract_features(clips(int(n), shape).to(dtype))
            assert pooled.shape[2:] == (1, 1, 1), f"clip set {n}: pooled map {list(pooled.shape)}"
            values = pooled.flatten(1)
            print(f"{dtype} clips {n}: {list(pooled.shape)}, mean {values.mean():.3f}, max {values.max():.3f}, "
                  f"zeros {(values == 0).double().mean():.3f}", file=sys.stderr)
            features[n] = {"shape": list(values.shape), "value": values.reshape(-1).tolist()}
    return {"features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write (default: %(default)s)")
    args = parser.parse_args()
    checked_repository(args.repo, REPOSITORY, COMMIT)
    torch.set_num_threads(1)
    pytorch_i3d = public_module(args.repo.resolve())
    public = pytorch_i3d.InceptionI3d(400, in_channels=3)
    fixture = {
        "produced_by": {
            **produced_by(SCRIPT, REPOSITORY, COMMIT, neutralised=[]),
            "ran": "pytorch_i3d.py InceptionI3d(400, in_channels=3), eval(), extract_features(clips).flatten(1)",
        },
        **RULES,
        "clip_shapes": CLIP_SHAPES,
        "public_state": [[name, list(tensor.shape)] for name, tensor in public.state_dict().items()],
        "float32": run(pytorch_i3d, torch.float32),
        "float64": run(pytorch_i3d, torch.float64),
    }
    write_json(args.out, fixture)


if __name__ == "__main__":
    main()
