"""PEL4VAD training objective, schedule, scoring and test-time smoothing.

Pu, Wu, Yang, Wang: "Learning Prompt-Enhanced Context Features for Weakly-Supervised Video Anomaly
Detection", IEEE TIP 2024 (arXiv 2306.14451). Public code: github.com/yujiangpu20/PEL4VAD at eeb31f4.

Training input: every crop of a video is a sample of its own; a video of T snippets becomes 200 uniformly
sub-sampled snippets (T > 200) or its T snippets followed by zero rows; one shuffled loader walks all of
them (not class-balanced) in batches of 128, the last batch of each epoch smaller (`PEL4VAD.declarations`).
The batch is cropped to its longest true length (``batch.lengths``). The learning rate follows
``CosineAnnealingLR(T_max=60)``, stepped once per epoch (`PEL4VAD.declarations`).

Loss on a batch of B samples with scores s (B, T), video features h (B, 512, T), labels y, classes c:

- mil: per sample, inside its true length L: the top-1 score if y = 0, the mean of the top-(L // 16 + 1)
  scores if y = 1; BCE against y (``torch.nn.BCELoss``), mean over the batch;
- prompt: a_t = exp(10 s_t) - 1 and n_t = exp(10 (1 - s_t)) - 1, each L1-normalised over all T positions of
  the cropped batch (padding included); f_abn = sum_t a_t h_t, f_nor = sum_t n_t h_t. A normal sample
  (c = 0) gives the pair (f_abn, prompt 0, class 0); an abnormal one gives (f_abn, its class prompt, class c)
  and (f_nor, prompt 0, class 0), where a video's class prompt is the mean of the prompt rows of every class
  it shows (``batch.class_sets``): row c for a video of one class; on ShanghaiTech, where 7 of the 63
  abnormal training videos show two actions, the mean of both rows as the public loader gives it (c stays
  the first action). With the M pairs: logits = exp(logit_scale) F P^T of the L2-normalised rows,
  target_i = softmax_j(10 [class_i = class_j]), prompt = KL(target || softmax(logits)) summed and divided
  by M (``KLDivLoss(reduction="batchmean")``); 0 if the log-probabilities hold a NaN;
- loss = mil + lamda * prompt (the returned ``mil`` and ``prompt`` are unweighted).

Scores: the sigmoid scores of every crop, averaged over crops; `PEL4VAD.postprocess` then smooths each
video's scores as the public ``infer.py`` does (``smoothing``/``kappa``). The checkpoints the public code
saves (``torch.save(model.state_dict())`` of its XModel, as its released ``ckpt/*.pkl``) load, through
`vadbench.methods.pel4vad.checkpoint` (the names renamed, no tensor changed), and score as its ``infer_func``
does (tests/unit/test_public_checkpoint_urdmu_bnwvad_pel4vad.py).

DIFFERENCES between the paper, the public code and vadbench (defaults follow the code):

- Side inputs: the code parses each video's class from its file name and reads CLIP ViT-B/16 prompt
  vectors from ``list/*/...-prompt.npy``; vadbench takes them from the dataset (``batch.classes``,
  ``batch.class_sets``, ``batch.prompts``, `PEL4VAD.declarations`) and refuses a dataset that supplies no
  prompt vectors or no classes (ValueError). The UCF loader rounds the prompts to float16 first; vadbench
  uses them as given.
- Input width: the code hard-codes D = 1024 and linear1 D -> D/2 = 512, the width of the CLIP prompts;
  vadbench takes D from the data and keeps linear1's output at ``prompt_dim`` = 512 (it must equal the
  prompt width P; a mismatch is a ValueError).
- True lengths: the code recovers them as the number of non-zero rows; vadbench reads ``batch.lengths``
  (identical unless a real snippet is all zeros).
- Batches: as the code's loader, which shuffles the crop-file list every epoch and walks it in batches of
  128, the last one smaller (100 on UCF), but with a generator of its own seeded from the run's seed, where
  the code's loader shares torch's global generator (seeded by the code) with initialisation and dropout.
  The loader walks the training set's order (video by video, crop by crop): the code's UCF-Crime and
  XD-Violence lists order the videos as the RTFM and Wu lists vadbench reads do; its ShanghaiTech list
  sorts them by name, where vadbench's (RTFM's list, or the official split) puts the anomalous ones first.
- Schedule: the training length is ``steps``, each epoch ceil(N / 128) steps for N training samples;
  ``steps`` = 50 epochs of the published list: UCF ceil(16100 / 128) = 126 steps per epoch (6300), XD
  ceil(19770 / 128) = 155 (7750), SH ceil(2380 / 128) = 19 (950). On other data the epochs are as many as
  the steps make (beyond T_max = 60 the cosine rises again, as torch's does).
- Model selection: the code tests after every epoch without smoothing and keeps the best test AUC (UCF,
  SH) or AP (XD); its reported numbers are that checkpoint with smoothing. vadbench does not select on
  the test set by default (its protocol decides) and smooths whenever ``smoothing`` is not "none".
  Measured effect of the selection (leaderboards/field-protocols.md, synthetic, batches of 16, seed 0,
  every 10 steps): +0.10 [+0.01, +0.19] AUC over the last weights.
- Order of operations (equal up to rounding, for speed: a third of the step on one CPU thread): TCA mixes
  its global and local attention maps before one product with the values, where the code multiplies each
  with them and mixes the results; the causal classifier is one batched product with its kernel columns
  and a sum of the shifted columns, where the code runs a padded ``Conv1d``.
- Log-probabilities: log_softmax instead of the code's log(softmax) (equal up to rounding, finite where
  the softmax underflows). Attention heads: one (every published config; the code's multi-head reshape
  is not a head split), not an option.
- Seeds: the code fixes one seed per dataset (UCF 9, XD 4, SH 0); vadbench's runs choose their seeds.
- Short videos: nothing in the model needs a minimum length (T = 1 works as in the code).
- Saturated scores: BCE is torch's (as the code's ``BCELoss``), so a score of exactly 0 or 1 keeps a finite
  gradient. TCA's power normalisation is the code's sqrt(ReLU(z)) - sqrt(ReLU(-z)), computed as sign(z)
  sqrt(|z|) with the code's gradient bit for bit (0 where z is exactly 0, as the code's ReLU gives it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vadbench.api.dataset import DataShape
from vadbench.api.method import Declarations, Method, Sampling, TrainBatch, TrainingInput
from vadbench.api.reduction import Reduction
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.losses import binary_cross_entropy
from vadbench.methods._shared.tensors import at_least_float32, crop_sequences
from vadbench.methods._shared.widths import scaled, width_scale
from vadbench.methods.pel4vad.checkpoint import public_state
from vadbench.methods.pel4vad.model import PEL4VADNet

#: Sharpness of the score weights of the prompt pooling (get_cas's scale) and of the KL target.
POOLING_SCALE = 10.0
TARGET_SCALE = 10.0


@dataclass(frozen=True)
class PEL4VADConfig:
    """Hyper-parameters of PEL4VAD (defaults: the public code's UCF-Crime configuration).

    batch_size: samples per (mixed) batch; steps: training iterations (50 epochs of the published UCF list,
    see DIFFERENCES); t_max: the cosine schedule's T_max in epochs; lr: Adam's;
    segments: snippets a training video is sub-sampled/padded to; hidden: TCA width; out_dim: width of
    the second 1x1 conv; prompt_dim: width of linear1's output, the video feature matched with the prompt
    vectors; window: TCA's local window; gamma, beta: initial w and b of the distance prior; norm: power
    + L2 normalisation in TCA; t_step: kernel of the causal classifier; temperature: logit_scale starts at
    ln(1 / temperature); lamda: weight of the prompt loss; dropout: after both 1x1 convs; smoothing, kappa:
    test-time smoothing ("slide", "fixed" or "none") and its window.

    The widths are the published ones (1024-d features); below 1024-d the default `prompt_dim` follows the
    features (`for_data`: the code's D / 2), so a prompts file for narrow features must have that width
    (the stand-in prompts do), or ``--set prompt_dim=512`` for CLIP's.
    """

    batch_size: int = 128
    steps: int = 6300
    t_max: int = 60
    lr: float = 5e-4
    segments: int = 200
    hidden: int = 128
    out_dim: int = 300
    prompt_dim: int = 512
    window: int = 9
    gamma: float = 0.6
    beta: float = 0.2
    norm: bool = True
    t_step: int = 9
    temperature: float = 0.09
    lamda: float = 1.0
    dropout: float = 0.1
    smoothing: Literal["slide", "fixed", "none"] = "slide"
    kappa: int = 7

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "t_max", "lr", "segments", "hidden", "out_dim",
                      "prompt_dim", "window", "t_step", "temperature", "kappa"),
            non_negative=("lamda",),
            probability=("dropout",),
            choices={"smoothing": ("slide", "fixed", "none")},
        )

    @classmethod
    def for_data(cls, shape: DataShape) -> dict[str, Any]:
        """The defaults for data of `shape` where they are not the published ones: a narrower `prompt_dim`
        below 1024-d features (`widths_for`). The 200 segments stay on short videos: a step trains on its
        batch's longest video only (the padding cut, as the public code does), so fewer would cost the same."""
        return cls.widths_for(shape.feature_dim)

    @classmethod
    def widths_for(cls, feature_dim: int | None) -> dict[str, Any]:
        """The width defaults for `feature_dim`-d features where they are not the published ones: below 1024-d
        `prompt_dim` times D / 1024 (D / 2, as the code's linear1; 64-d: 32). The TCA and classifier widths
        (128, 300) stay: narrowed too (8, 19), they cost 14.6 AUC points on the synthetic default (seeds 0-4:
        71.73 +- 12.34 against 86.32 +- 6.91). Measured there before revision 3 (one thread, a shared machine): 357 ms
        a step at the published widths, 107 ms with prompt_dim 32, 25 ms with all three narrowed; RTFM 34 ms."""
        scale = width_scale(feature_dim)
        return {} if scale == 1 else {"prompt_dim": scaled(cls.prompt_dim, scale)}


def mil_loss(scores: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """BCE of each sample's top-1 (normal) or top-(L // 16 + 1) mean (abnormal) score inside its length L."""
    steps = scores.shape[1]
    valid = torch.arange(steps, device=scores.device)[None, :] < lengths[:, None]
    ranked = scores.masked_fill(~valid, -math.inf).sort(dim=1, descending=True).values
    k = torch.where(labels > 0, lengths // 16 + 1, torch.ones_like(lengths))
    chosen = torch.arange(steps, device=scores.device)[None, :] < k[:, None]
    video = torch.where(chosen, ranked, torch.zeros_like(ranked)).sum(dim=1) / k
    return binary_cross_entropy(video, labels, saturated="clamp_log")  # torch's BCELoss, as the public code's


def class_prompts(prompts: torch.Tensor, class_sets: torch.Tensor) -> torch.Tensor:
    """(B, P) each sample's class prompt: the mean of the prompt rows (K, P) of the classes its video shows
    (`class_sets` (B, A), -1 after the last), as the public ShanghaiTech loader averages a video's actions;
    a video of one class gets its row exactly."""
    shown = (class_sets >= 0).to(prompts.dtype)
    rows = prompts[class_sets.clamp(min=0)]
    return (shown[..., None] * rows).sum(dim=1) / shown.sum(dim=1, keepdim=True)


def prompt_pairs(
    scores: torch.Tensor, video: torch.Tensor, classes: torch.Tensor, sample_prompts: torch.Tensor,
    normal_prompt: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (video feature, prompt, class) rows of the prompt loss, in the public code's order.

    scores (B, T), video (B, P, T), classes (B,) with 0 = normal, sample_prompts (B, P) each sample's class
    prompt (`class_prompts`), normal_prompt (P,).
    """
    abnormal_weights = F.normalize(torch.exp(POOLING_SCALE * scores) - 1, p=1, dim=1)
    normal_weights = F.normalize(torch.exp(POOLING_SCALE * (1 - scores)) - 1, p=1, dim=1)
    foreground = torch.einsum("bt,bpt->bp", abnormal_weights, video)
    background = torch.einsum("bt,bpt->bp", normal_weights, video)
    # Each sample's pair(s) next to each other, (B, 2, ...); the background pair kept for abnormal ones only.
    kept = torch.stack([torch.ones_like(classes, dtype=torch.bool), classes != 0], dim=1).flatten()
    features = torch.stack([foreground, background], dim=1).flatten(0, 1)[kept]
    prompts = torch.stack([sample_prompts, normal_prompt.expand_as(sample_prompts)], dim=1).flatten(0, 1)[kept]
    row_classes = torch.stack([classes, torch.zeros_like(classes)], dim=1).flatten()[kept]
    return features, prompts, row_classes


def prompt_loss(
    features: torch.Tensor, prompts: torch.Tensor, classes: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """KL(batchmean) between softmax(10 [same class]) and the softmax of the scaled cosine logits; 0 on NaN."""
    features = features / features.norm(dim=-1, keepdim=True)
    prompts = prompts / prompts.norm(dim=-1, keepdim=True)
    logits = (logit_scale.exp() * features) @ prompts.T
    log_probabilities = at_least_float32(logits).log_softmax(dim=1)
    if torch.isnan(log_probabilities).any():
        return log_probabilities.new_zeros(())
    same = (classes[:, None] == classes[None, :]).to(log_probabilities.dtype)
    target = (TARGET_SCALE * same).softmax(dim=1)
    return (target * (target.log() - log_probabilities)).sum() / len(features)


def fixed_smooth(scores: np.ndarray, kappa: int) -> np.ndarray:
    """Each position takes the mean of its block of `kappa` (the last block zero-padded)."""
    steps = len(scores)
    blocks = -(-steps // kappa)
    padded = np.zeros(blocks * kappa, dtype=np.float64)
    padded[:steps] = scores
    return np.repeat(padded.reshape(blocks, kappa).mean(axis=1), kappa)[:steps].astype(scores.dtype)


def slide_smooth(scores: np.ndarray, kappa: int) -> np.ndarray:
    """s'_t = mean(s_t .. s_t+kappa-1), zeros after the end (a forward-looking window)."""
    steps = len(scores)
    cumulative = np.concatenate([[0.0], np.cumsum(np.concatenate([scores, np.zeros(kappa - 1)]), dtype=np.float64)])
    return ((cumulative[kappa : kappa + steps] - cumulative[:steps]) / kappa).astype(scores.dtype)


class PEL4VAD(Method):
    """PEL4VAD: TCA context features, causal classifier, MIL + prompt-enhanced (KL) loss, smoothing."""

    Config = PEL4VADConfig
    config: PEL4VADConfig
    #: 2: batches and epochs of the public code's loader instead of fresh draws every step and epochs of
    #: steps / 50 steps; a ShanghaiTech video of two actions gets the mean of their prompt rows, as the
    #: public loader gives it; `val` selection scores each held-out video alone, over its true segments,
    #: smoothed as the test set. 3: TCA's attention maps mixed before their product with the values and the
    #: classifier as a batched product (DIFFERENCES, "Order of operations"): equal up to rounding, which
    #: training amplifies (a run's numbers move).
    revision = 3

    def declarations(self) -> Declarations:
        """`segments` sub-sampled snippets, every crop its own sample, mixed batches from the public code's
        loader: one over all samples, `batch_size` a batch, shuffled, the last batch smaller, 8 workers,
        ``for epoch: for batch in loader``; the scheduler stepped after each epoch, as the code calls
        ``scheduler.step()``. Each test video is scored alone (TCA's global attention attends to every
        snippet), and the loss crops its batch to the longest true length, a Python number, so seeds cannot
        stack. It reads each video's class and the class prompts, of width ``prompt_dim`` (linear1's output
        width, which the prompt vectors are matched with; CLIP ViT-B/16: 512), and smooths each test
        video's scores as the public ``infer.py`` does."""
        return Declarations(
            training_input=TrainingInput(
                Reduction("subsample", self.config.segments), crops="independent", batch="mixed",
                sampling=Sampling("epochs", shuffle=True, drop_last=False, restart="zip", workers=8),
            ),
            padded_scoring="alone",
            stackable=False,
            side_inputs=frozenset({"classes", "prompts"}),
            prompt_width=self.config.prompt_dim,
            scheduler_interval="epoch",
            postprocess=self.postprocess,
            public_checkpoint=public_state,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return PEL4VADNet(
            feature_dim, hidden=cfg.hidden, out_dim=cfg.out_dim, prompt_dim=cfg.prompt_dim, window=cfg.window,
            gamma=cfg.gamma, beta=cfg.beta, normalise=cfg.norm, t_step=cfg.t_step, temperature=cfg.temperature,
            dropout=cfg.dropout,
        )

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        prompts = batch.prompts
        if prompts.numel() == 0:
            raise ValueError("PEL4VAD needs prompt vectors, but the dataset supplied no prompt vectors")
        if bool((batch.classes < 0).any()):
            raise ValueError("PEL4VAD needs the class of every training video, but the dataset supplied none")
        longest = int(batch.lengths.max())
        scores, video = model(batch.features[:, :longest])
        mil = mil_loss(scores, batch.labels, batch.lengths)
        prompts = prompts.to(video.dtype)
        features, matched, classes = prompt_pairs(
            scores, video, batch.classes, class_prompts(prompts, batch.class_sets), prompts[0]
        )
        prompt = prompt_loss(features, matched, classes, cast(PEL4VADNet, model).logit_scale)
        return {"loss": mil + self.config.lamda * prompt, "mil": mil.detach(), "prompt": prompt.detach()}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, crops, steps, _ = features.shape
        scores, _ = model(crop_sequences(features))
        return scores.reshape(batch, crops, steps).mean(dim=1)

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr)

    def scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        """The code's ``CosineAnnealingLR(T_max=60, eta_min=0)``, which the engine steps after each epoch."""
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.config.t_max, eta_min=0)

    def postprocess(self, scores: np.ndarray) -> np.ndarray:
        """The public ``infer.py`` smoothing of one video's crop-averaged scores (none when kappa is 1)."""
        if self.config.smoothing == "none" or self.config.kappa == 1:
            return scores
        smooth = slide_smooth if self.config.smoothing == "slide" else fixed_smooth
        return smooth(np.asarray(scores), self.config.kappa)
