"""Model selection: which weights of a training run are evaluated on the test set.

The public RTFM code (main.py) scores the TEST set after every step that is a multiple of 5 and past
step 200 and keeps the best checkpoint, so published numbers are selected on the test labels.
vadbench defaults to honest selection and computes the test-selected number only under its own,
always-labelled protocol:

- ``last`` (default, honest): the weights after the fixed schedule. Nothing is evaluated during
  training, so the test labels are read only by the final evaluation.
- ``val`` (honest): a stratified `fraction` of the TRAINING videos is held out before training starts
  (the model never trains on them). After every `every`-th step and after the last one the held-out
  videos are scored and the weights with the best video-level ROC AUC are kept. Only video labels are
  used, as weak supervision allows: a held-out video's score is the mean of the top tenth (at least one)
  of its true segments' scores (3 of 32 segments, RTFM's own video-level score), scored through the same
  path as the test set (the method's padding rule and post-processing). Ties keep the later checkpoint,
  so a validation AUC that saturates early does not stop training short.
- ``oracle-test`` (optimistic): the public code's rule to the letter. Steps count from 1; after each
  step with ``step % every == 0 and step > after`` (defaults 5 and 200: steps 205, 210, ...) the TEST
  set is scored with its ground truth, and a checkpoint is kept only when it strictly beats the best
  so far, so ties keep the FIRST best. The last step is scored only when it satisfies the same rule.
  The score is the benchmark's primary metric (the public code's test() returns frame AUC; its
  datasets, UCF-Crime and ShanghaiTech, have AUC as their primary metric). A schedule with no such
  step (e.g. the synthetic benchmark's 200 steps) scores no checkpoint: the final weights are
  evaluated, and the result records ``checkpoints_scored = 0``. Its rows are labelled and tables
  never mix them with honest rows.

- ``given``: no training at all: the weights of a checkpoint file, scored by `vadbench evaluate` (the run key
  holds the file's SHA-256). Never a protocol of `run` or a grid; its rows are labelled like the others.

Every selecting protocol records in the result's metrics ``selected_step`` (the step whose weights
were evaluated), ``checkpoints_scored`` and, when a checkpoint was scored, ``selection_score``.

This module parses protocol strings and never imports torch (tables use it); the selectors that
implement the protocols during training are in `vadbench.engine.selection`.

A protocol string is a name, optionally followed by settings: ``oracle-test:every=10,after=0``,
``val:fraction=0.3,every=20``. The string is part of the run key, so `parse_protocol(...).text` gives
the canonical spelling (defaults omitted) that equal runs share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vadbench.api.errors import UsageError

#: The protocols of a training run (`run`, grids).
TRAINING_PROTOCOLS = ("last", "val", "oracle-test")
#: The protocol of weights given as a file (`vadbench evaluate`).
GIVEN = "given"
PROTOCOLS = (*TRAINING_PROTOCOLS, GIVEN)
#: Protocols that read the test labels before the final evaluation: never mixed with honest rows.
TEST_SELECTED = frozenset({"oracle-test"})
#: Steps between checkpoints (the public RTFM code tests every 5 steps).
DEFAULT_EVERY = 5
#: ``oracle-test`` scores only steps past this one (the public RTFM code: ``step > 200``).
DEFAULT_AFTER = 200
#: Share of each class of training videos held out by ``val``.
DEFAULT_FRACTION = 0.2
_SETTINGS = {"last": (), "val": ("every", "fraction"), "oracle-test": ("every", "after"), GIVEN: ()}


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol string."""

    name: str = "last"
    every: int = DEFAULT_EVERY
    fraction: float = DEFAULT_FRACTION
    after: int = DEFAULT_AFTER

    @property
    def honest(self) -> bool:
        """False when the protocol selects weights on the test labels."""
        return self.name not in TEST_SELECTED

    @property
    def text(self) -> str:
        """The canonical spelling: the name plus every setting that differs from its default."""
        changed = [
            f"{key}={getattr(self, key)}"
            for key in _SETTINGS[self.name]
            if getattr(self, key) != getattr(Protocol, key)
        ]
        return f"{self.name}:{','.join(changed)}" if changed else self.name


def parse_protocol(text: str) -> Protocol:
    """``"val:fraction=0.3"`` -> Protocol; a usage error names the protocol and the bad setting."""
    name, _, settings = str(text).partition(":")
    name = name.strip()
    if name not in PROTOCOLS:
        raise UsageError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    values: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in settings.split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in _SETTINGS[name]:
            allowed = ", ".join(_SETTINGS[name]) or "none"
            raise UsageError(f"protocol {text!r}: bad setting {item!r}; settings of {name!r}: {allowed}")
        try:
            values[key] = float(value) if key == "fraction" else int(value)
        except ValueError:
            raise UsageError(f"protocol {text!r}: {key} expects a number, got {value!r}") from None
    protocol = Protocol(name, **values)
    if protocol.every < 1:
        raise UsageError(f"protocol {text!r}: every must be at least 1")
    if protocol.after < 0:
        raise UsageError(f"protocol {text!r}: after must be at least 0")
    if not 0 < protocol.fraction < 1:
        raise UsageError(f"protocol {text!r}: fraction must be between 0 and 1")
    return protocol
