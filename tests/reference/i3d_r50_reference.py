"""Write the I3D-ResNet50 equality fixture (tests/unit/data/i3d_r50_reference.json) by running the public network.

The public code: Tushar-N/pytorch-resnet3d (the feature network RTFM names) at the commit the fixture pins.
Get it with

    git clone https://github.com/Tushar-N/pytorch-resnet3d
    git -C pytorch-resnet3d checkout 8d3e1da2c2bb77831ea40113ea2914b8c7ba733b

It needs torch only. Run, from the root of this repository (one thread: the numbers depend on the summation
order):

    OMP_NUM_THREADS=1 python tests/reference/i3d_r50_reference.py --repo pytorch-resnet3d

What it runs, unmodified, for each variant (vanilla ``i3_res50``, non-local ``i3_res50_nl``): the network those
two functions build, ``models.resnet.I3Res50(num_classes=400, use_nl=...)``, with every state_dict entry set by
the named rule of fixture_rule.py (in place of the converted Kinetics checkpoint they load from
``pretrained/``, which cannot be had here), in eval mode, called as the public evaluation calls it
(``net({"frames": clips})``) on two seeded clips of [3, 16, 224, 224] (the extractor's input size); the
feature is the ``avgpool`` output, kept by a forward hook (the public forward goes on to dropout and ``fc``).
Each variant runs twice: in float32, then the same network and clips cast to float64.

The fixture holds the public state_dict names and shapes of both variants (classifier included) and the
[2, 2048] features of both runs, all entries: float64 as Python writes them, float32 to 9 significant digits
(which give the float32 value back exactly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from fixture_rule import named_state_value, video_clips
from public_run import checked_repository, feature_record, produced_by, write_json
from torch import nn

CODE = "Tushar-N/pytorch-resnet3d"
COMMIT = "8d3e1da2c2bb77831ea40113ea2914b8c7ba733b"
SCRIPT = "tests/reference/i3d_r50_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "i3d_r50_reference.json"

#: The two public networks, by the name the fixture gives them: whether ``use_nl`` is set.
VARIANTS = {"vanilla": False, "non_local": True}
#: The clips: how many, their frames and (square) size, and the u() stream they are drawn from.
CLIPS = {"clips": 2, "frames": 16, "size": 224, "stream": 1}
NEUTRALISED = [
    "the checkpoint i3_res50()/i3_res50_nl() load from pretrained/: replaced by the named fixture rule's "
    "state_dict (the network built as those functions build it: I3Res50(num_classes=400, use_nl=...))",
    "the feature: the avgpool output, kept by a forward hook (dropout, in eval mode, and fc run after it)",
]
RULES = {
    "parameters": "fixture_rule.named_state_value(name, shape) for every public state_dict entry (k = crc32 "
    "of the name, kind from the name and shape), float32; the float64 run casts them",
    "clips": "fixture_rule.video_clips(stream, clips, frames, size), float32; the float64 run casts them",
}


def public_network(resnet, use_nl: bool) -> nn.Module:
    """The public I3Res50 with the rule's values (float32), in eval mode."""
    network = resnet.I3Res50(num_classes=400, use_nl=use_nl)
    state = {name: named_state_value(name, tuple(tensor.shape)) for name, tensor in network.state_dict().items()}
    network.load_state_dict(state, strict=True)
    return network.eval()


def public_features(network: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """The avgpool output of the public forward, flattened to [B, 2048]."""
    kept = {}
    hook = network.avgpool.register_forward_hook(lambda module, inputs, output: kept.update(output=output))
    try:
        with torch.no_grad():
            network({"frames": clips})
    finally:
        hook.remove()
    return kept["output"].flatten(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {CODE} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write (default: %(default)s)")
    args = parser.parse_args()
    sys.path.insert(0, str(checked_repository(args.repo, CODE, COMMIT).resolve()))
    from models import resnet

    torch.set_num_threads(1)
    clips = video_clips(CLIPS["stream"], CLIPS["clips"], CLIPS["frames"], CLIPS["size"])
    state, features = {}, {}
    for variant, use_nl in VARIANTS.items():
        network = public_network(resnet, use_nl)
        state[variant] = [[name, list(tensor.shape)] for name, tensor in network.state_dict().items()]
        fp32 = public_features(network, clips)
        fp64 = public_features(network.double(), clips.double())
        features[variant] = feature_record(fp32, fp64)
    fixture = {
        "produced_by": produced_by(SCRIPT, CODE, COMMIT, NEUTRALISED),
        "rules": RULES,
        "clips": CLIPS,
        "public_state": state,
        "features": features,
    }
    write_json(args.out, fixture)


if __name__ == "__main__":
    main()
