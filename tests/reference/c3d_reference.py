"""Write the C3D equality fixture (tests/unit/data/c3d_reference.json) by running the public network.

The public code: DavideA/c3d-pytorch (the PyTorch port of C3D v1.0's Sports-1M network, whose converted weights
are ``c3d.pickle``) at the commit the fixture pins. Get it with

    git clone https://github.com/DavideA/c3d-pytorch
    git -C c3d-pytorch checkout 1111ccf0de77cf1ba9f1027f7f065e889fc97169

It needs torch only (``C3D_model.py`` imports nothing else). Run, from the root of this repository (one thread:
the numbers depend on the summation order):

    OMP_NUM_THREADS=1 python tests/reference/c3d_reference.py --repo c3d-pytorch

What it runs, unmodified: ``C3D_model.C3D()`` with every state_dict entry set by the named rule of
fixture_rule.py (in place of ``c3d.pickle``, which cannot be had here), in eval mode, called as its
``predict.py`` calls it (``net(X)``) on two seeded clips of [3, 16, 112, 112] (the size it takes); the feature is
fc6 after the public ReLU, kept as the input of the first call of ``dropout`` (the forward runs
``self.dropout(self.relu(self.fc6(h)))``, then goes on to fc7, fc8 and the softmax; dropout is the identity in
eval mode). It runs twice: in float32, then the same network and clips cast to float64.

The fixture holds the public state_dict names and shapes (fc7 and fc8 included) and the [2, 4096] features of
both runs, all entries: float64 as Python writes them, float32 to 9 significant digits (which give the float32
value back exactly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from fixture_rule import named_state_value, video_clips
from public_run import checked_repository, feature_record, produced_by, write_json
from torch import nn

CODE = "DavideA/c3d-pytorch"
COMMIT = "1111ccf0de77cf1ba9f1027f7f065e889fc97169"
SCRIPT = "tests/reference/c3d_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "c3d_reference.json"

#: The clips: how many, their frames and (square) size, and the u() stream they are drawn from.
CLIPS = {"clips": 2, "frames": 16, "size": 112, "stream": 3}
NEUTRALISED = [
    "the checkpoint predict.py loads (c3d.pickle): replaced by the named fixture rule's state_dict",
    "the feature: fc6 after the public ReLU, kept as the input of the first dropout call by a forward pre-hook "
    "(dropout, in eval mode, fc7, fc8 and the softmax run after it); .cuda() not called",
]
RULES = {
    "parameters": "fixture_rule.named_state_value(name, shape) for every public state_dict entry (k = crc32 "
    "of the name, kind from the name and shape), float32; the float64 run casts them",
    "clips": "fixture_rule.video_clips(stream, clips, frames, size), float32; the float64 run casts them",
}


def public_network(module) -> nn.Module:
    """The public C3D with the rule's values (float32), in eval mode."""
    network = module.C3D()
    state = {name: named_state_value(name, tuple(tensor.shape)) for name, tensor in network.state_dict().items()}
    network.load_state_dict(state, strict=True)
    return network.eval()


def public_features(network: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """fc6 after the public ReLU: the input of the forward's first dropout call, [B, 4096]."""
    kept: list[torch.Tensor] = []
    hook = network.dropout.register_forward_pre_hook(lambda module, inputs: kept.append(inputs[0]))
    try:
        with torch.no_grad():
            network(clips)
    finally:
        hook.remove()
    return kept[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {CODE} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write (default: %(default)s)")
    args = parser.parse_args()
    sys.path.insert(0, str(checked_repository(args.repo, CODE, COMMIT).resolve()))
    import C3D_model

    torch.set_num_threads(1)
    clips = video_clips(CLIPS["stream"], CLIPS["clips"], CLIPS["frames"], CLIPS["size"])
    network = public_network(C3D_model)
    state = [[name, list(tensor.shape)] for name, tensor in network.state_dict().items()]
    fp32 = public_features(network, clips)
    fp64 = public_features(network.double(), clips.double())
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "rules": RULES,
        "clips": CLIPS,
        "public_state": state,
        "features": feature_record(fp32, fp64),
    }
    write_json(args.out, fixture)


if __name__ == "__main__":
    main()
