"""Writes tests/unit/data/pel4vad_reference.json by running the public PEL4VAD code, unmodified, at its pinned commit.

Get the code (its checkpoints and ground-truth arrays are not needed):

    git clone https://github.com/yujiangpu20/PEL4VAD && git -C PEL4VAD checkout eeb31f4ca10b805996fb39e5c395f1a8dc119096

Packages the public modules need: torch, numpy, scipy (layers.py, utils.py) and scikit-learn (test.py):
``pip install scipy scikit-learn``.

Command, from the root of a vadbench checkout (it refuses a checkout at another commit):

    OMP_NUM_THREADS=1 python tests/reference/pel4vad_reference.py --repo PEL4VAD

What runs, for the UCF-Crime, XD-Violence and ShanghaiTech configurations of the public configs.py (D = 1024,
as the code hard-codes): the public ``XModel`` (model.py, modules.py, layers.py) and one call of
``train_func`` (train.py: ``CLAS2`` and ``KLV_loss`` of loss.py, ``get_cas``, ``create_logits`` and
``gen_label`` of utils.py) with ``BCELoss``, ``KLDivLoss(reduction="batchmean")`` and ``Adam(lr=cfg.lr)`` as
main.py builds them, on one batch: one Adam step. Then ``test_func`` (test.py, eval mode, crops averaged after
the sigmoid) on one test video, the smoothing of utils.py as infer.py applies it, and main.py's
``CosineAnnealingLR(T_max=60)`` over ``cfg.max_epoch`` epochs. The UCF-Crime and XD-Violence batches are
handed to ``train_func`` as tensors (prompt pair = [row 0; row of the class]); the ShanghaiTech batch comes from
the public ``SHDataset`` (dataset.py) and a ``DataLoader``, reading feature files written to a temporary folder
and the repository's own list/sh/relabel.list, so that its two-action videos get the code's class prompt (the
mean of their actions' prompt rows). Every parameter and input is set by the rules recorded in the fixture (no
random generator), once in float32 and once in float64 (the same float32 values cast to float64; the prompt
file of the float64 run is saved in float64). CPU, one torch thread.

Neutralised at run time, by monkeypatching here (the code's files are not changed):

- ``Tensor.cuda`` returns the tensor (CPU run);
- dropout: ``cfg.dropout = 0`` (its masks are random);
- ShanghaiTech: ``cfg.feat_prefix``, ``cfg.train_list``, ``cfg.token_feat`` point at the temporary folder, and
  ``cfg.max_seqlen`` is the fixture's segment count (short videos keep the fixture small);
- float64 run only: ``Tensor.float`` returns the tensor in float64, because ``train_func`` and ``test_func``
  cast their inputs with ``.float()``; the script checks that these are its only callers;
- ``roc_curve`` as test.py sees it is wrapped to read the frame scores ``test_func`` computes (it returns only
  the AUC); the snippet scores are every 16th of them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPOSITORY = "yujiangpu20/PEL4VAD"
COMMIT = "eeb31f4ca10b805996fb39e5c395f1a8dc119096"
SCRIPT = "tests/reference/pel4vad_reference.py"
FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "data" / "pel4vad_reference.json"

FEATURE_DIM = 1024
PROMPT_DIM = 512
SEGMENTS = 24
TEST_SHAPE = (2, 13)  # crops, snippets
#: Smoothing windows, and the lengths of the smoothed score sequences (all of them, then the first 5).
KAPPAS = (3, 7, 8)
SMOOTHED_LENGTHS = (23, 5)
#: The training batch of each case: true lengths, labels and each sample's video classes (the first is its class
#: label; ShanghaiTech's are read by the public SHDataset from its relabel.list: see SH_SAMPLES).
CASES: dict[str, dict[str, Any]] = {
    "ucf": {"config": "ucf", "lengths": [21, 17, 9, 5, 19, 12], "labels": [0, 1, 0, 1, 1, 0],
            "class_sets": [[0], [3], [0], [1], [3], [0]], "prompt_classes": 4},
    "xd": {"config": "xd", "lengths": [21, 17, 9, 5, 19, 12], "labels": [0, 1, 0, 1, 1, 0],
           "class_sets": [[0], [3], [0], [1], [3], [0]], "prompt_classes": 4},
    "sh": {"config": "sh", "lengths": [23, 11, 18, 7, 20, 15], "labels": [1, 0, 1, 1, 0, 1], "prompt_classes": 14},
}
#: ShanghaiTech samples: (crop file as the public train.list names it, label column). 01_0026, 03_0035 and
#: 08_0044 have two actions in relabel.list, 01_0014 one; 01_002 and 02_002 are normal.
SH_SAMPLES = [("train/01_0026_0.npy", "1.0"), ("train/01_002_0.npy", "0.0"), ("train/03_0035_1.npy", "1.0"),
              ("train/01_0014_3.npy", "1.0"), ("train/02_002_5.npy", "0.0"), ("train/08_0044_2.npy", "1.0")]
RULES = {
    "param_rule": "value_j = base + scale * sin(0.7 * j + 1.1 * k + 0.3) (float64, then float32), j = flat index, "
    "k = the tensor's index in the public state_dict order; base/scale per tensor in 'params'",
    "input_rule": "x[b, t, d] = 0.5 * sin(0.37 * d + 1.3 * t + 2.1 * b) + 0.2 * cos(0.05 * d * (b + 1) + 0.9 * t) "
    "for t < lengths[b], else 0, shape (B, segments, feature_dim) (float64, then float32)",
    "prompt_rule": "prompts[c, p] = cos(0.11 * p + 0.7 * c) + 0.3 * sin(0.013 * p * (c + 1)), c < prompt_classes, "
    "p < 512 (float64, then float32)",
    "test_rule": "test[c, t, d] = 0.5 * sin(0.29 * d + 0.8 * t + 1.7 * c) + 0.3 * cos(0.021 * d + 0.45 * t * (c + 1)), "
    "shape test_shape + (feature_dim,) = (crops, T, D) (float64, then float32); test_func gets it twice, with frame "
    "labels 1 on snippets 4 .. 7, then as a normal video (it needs one for its false-alarm rate)",
    "smoothing_rule": "scores[t] = 0.5 + 0.45 * sin(1.3 * t + 0.2) for t < 23 (float64, then float32); "
    "'<kind>_<kappa>' smooths all of them, '<kind>_<kappa>_short' the first 5",
    "sample_rule": "flat indices linspace(0, numel - 1, 6) rounded down; max_abs is over the whole tensor",
    "float64_rule": "the float64 run casts the float32 parameters and inputs to float64",
}


def rule_parameter(shape: tuple[int, ...], base: float, scale: float, k: int) -> np.ndarray:
    j = np.arange(math.prod(shape), dtype=np.float64)
    return (base + scale * np.sin(0.7 * j + 1.1 * k + 0.3)).reshape(shape).astype(np.float32)


def rule_features(lengths: list[int]) -> np.ndarray:
    b, t, d = np.meshgrid(np.arange(len(lengths)), np.arange(SEGMENTS), np.arange(FEATURE_DIM), indexing="ij")
    x = 0.5 * np.sin(0.37 * d + 1.3 * t + 2.1 * b) + 0.2 * np.cos(0.05 * d * (b + 1) + 0.9 * t)
    return (x * (t < np.array(lengths)[:, None, None])).astype(np.float32)


def rule_prompts(classes: int) -> np.ndarray:
    c, p = np.meshgrid(np.arange(classes), np.arange(PROMPT_DIM), indexing="ij")
    return (np.cos(0.11 * p + 0.7 * c) + 0.3 * np.sin(0.013 * p * (c + 1))).astype(np.float32)


def rule_test_video() -> np.ndarray:
    c, t, d = np.meshgrid(*(np.arange(n) for n in (*TEST_SHAPE, FEATURE_DIM)), indexing="ij")
    video = 0.5 * np.sin(0.29 * d + 0.8 * t + 1.7 * c) + 0.3 * np.cos(0.021 * d + 0.45 * t * (c + 1))
    return video.astype(np.float32)


def rule_smoothing_scores() -> np.ndarray:
    return (0.5 + 0.45 * np.sin(1.3 * np.arange(SMOOTHED_LENGTHS[0]) + 0.2)).astype(np.float32)


def parameter_spec(name: str, shape: tuple[int, ...], k: int, cfg) -> dict:
    """Base and scale of the k-th public tensor: near its initial value, with weights of Xavier's order."""
    base, scale = 0.0, 0.05
    if name == "logit_scale":
        base = float(np.log(1 / cfg.temp))
    elif name.endswith("loc_adj.w"):
        base = cfg.gamma
    elif name.endswith("loc_adj.b"):
        base = cfg.bias
    elif name.endswith("norm.weight"):
        base, scale = 1.0, 0.1
    elif len(shape) >= 2:
        scale = 1 / math.sqrt(math.prod(shape[1:]))
    return {"k": k, "base": base, "scale": scale, "shape": list(shape)}


def sampled(tensor: torch.Tensor) -> dict:
    flat = tensor.detach().reshape(-1)
    index = np.linspace(0, len(flat) - 1, 6).astype(int).tolist()
    return {"index": index, "values": flat[index].tolist(), "max_abs": flat.abs().max().item()}


@contextlib.contextmanager
def patched(owner, name: str, replacement) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def float_casts_to_float64(callers: set[str]):
    """``Tensor.float`` for the float64 run: the tensor in float64; records who called it."""

    def cast(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        frame = sys._getframe(1)
        callers.add(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}")
        return tensor.to(torch.float64)

    return cast


class Public:
    """The public modules, imported from the checkout."""

    def __init__(self, repo: Path) -> None:
        sys.path.insert(0, str(repo))
        self.repo = repo
        self.configs, self.model, self.train, self.test, self.utils, self.dataset = (
            importlib.import_module(name) for name in ("configs", "model", "train", "test", "utils", "dataset")
        )

    def config(self, case: dict):
        """The public configuration of `case`, dropout 0."""
        cfg = self.configs.build_config(case["config"])
        cfg.dropout = 0.0
        return cfg


def sh_loader(public: Public, case: dict, folder: Path, dtype: torch.dtype):
    """The public SHDataset over SH_SAMPLES (features by the input rule), in one batch, and the dataset."""
    features = rule_features(case["lengths"])
    for (file, _), video, length in zip(SH_SAMPLES, features, case["lengths"], strict=True):
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        np.save(folder / file, video[:length])
    (folder / "train.list").write_text("".join(f"{file} {label}\n" for file, label in SH_SAMPLES))
    prompts = folder / f"prompts-{str(dtype)[6:]}.npy"
    np.save(prompts, rule_prompts(case["prompt_classes"]).astype(np.float64 if dtype == torch.float64 else np.float32))
    cfg = public.config(case)
    cfg.feat_prefix, cfg.train_list, cfg.token_feat = str(folder), str(folder / "train.list"), str(prompts)
    cfg.abn_label, cfg.max_seqlen = str(public.repo / "list" / "sh" / "relabel.list"), SEGMENTS
    data = public.dataset.SHDataset(cfg)
    return torch.utils.data.DataLoader(data, batch_size=len(SH_SAMPLES), shuffle=False), data


def sh_class_sets(data) -> list[list[int]]:
    """Each SH sample's actions as SHDataset numbers them (its abn_dict and cls_dict; [0] for a normal video)."""
    names = [line.split(" ")[0].split("/")[-1][:-6] for line in data.list]
    return [[data.cls_dict[a] for a in data.abn_dict[n]] if n in data.abn_list else [0] for n in names]


def tensor_batch(case: dict):
    """A one-batch loader of the UCF/XD case: features, prompt pairs [row 0; row of the class], labels, classes."""
    prompts = torch.from_numpy(rule_prompts(case["prompt_classes"]))
    classes = torch.tensor([c[0] for c in case["class_sets"]])
    pairs = torch.stack([prompts[torch.zeros_like(classes)], prompts[classes]], dim=1)
    labels = torch.tensor(case["labels"], dtype=torch.float64)
    return [(torch.from_numpy(rule_features(case["lengths"])), pairs, labels, classes)]


def one_step(public: Public, case: dict, cfg, params: dict, loader, dtype: torch.dtype) -> dict:
    """The forward quantities, losses, gradients and parameters after one ``train_func`` step, test scores."""
    model = public.model.XModel(cfg).to(dtype)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            spec = params[name]
            tensor.copy_(torch.from_numpy(rule_parameter(tuple(spec["shape"]), spec["base"], spec["scale"], spec["k"])))
    seen: dict = {}

    def keep(name, function):
        def kept(*args):
            seen.setdefault(name, function(*args))
            return seen[name]
        return kept

    def keep_output(module, inputs, output) -> None:  # a hook that returned a value would replace the output
        seen.setdefault("forward", output)

    model.register_forward_hook(keep_output)
    criterion, criterion2 = torch.nn.BCELoss(), torch.nn.KLDivLoss(reduction="batchmean")
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    with patched(public.train, "get_cas", keep("get_cas", public.train.get_cas)), \
            patched(public.train, "create_logits", keep("create_logits", public.train.create_logits)):
        loss1, loss2 = public.train.train_func(loader, model, optimizer, criterion, criterion2, cfg.lamda)
    (_, t_input, _, _), = list(loader)
    scores, video = seen["forward"]
    pair_features, _, pair_classes = seen["get_cas"]
    record = {
        "scores": scores[..., 0].tolist(),
        "video_feature": {"shape": list(video.shape), "sum": video.sum().item(), "abs_sum": video.abs().sum().item(),
                          **sampled(video)},
        "pairs": {"classes": pair_classes.tolist(), "features_abs_sum": pair_features.abs().sum().item(),
                  "logits": seen["create_logits"][0].tolist()},
        "class_prompt_sums": t_input[:, 1].to(dtype).sum(dim=1).tolist(),
        "loss1": loss1.item(), "loss2": loss2.item(), "loss": (loss1 + cfg.lamda * loss2).item(),
        "grads": {name: {"norm": p.grad.norm().item(), **sampled(p.grad)} for name, p in model.named_parameters()},
        "after_step": {name: sampled(p) for name, p in model.named_parameters()},
    }
    record["test_scores"] = public_test_scores(public, model, cfg)
    return record


def public_test_scores(public: Public, model, cfg) -> list[float]:
    """The snippet scores ``test_func`` computes for the test video (read from its roc_curve call)."""
    frames: list[np.ndarray] = []
    roc_curve = public.test.roc_curve

    def reading(truth, scores, *args, **kwargs):
        frames.append(np.asarray(scores))
        return roc_curve(truth, scores, *args, **kwargs)

    video = torch.from_numpy(rule_test_video())
    frames_per_video = 16 * TEST_SHAPE[1]
    truth = np.zeros(2 * frames_per_video)
    truth[16 * 4 : 16 * 8] = 1
    with patched(public.test, "roc_curve", reading):
        public.test.test_func([(video, torch.zeros(1))] * 2, model, truth, cfg.dataset)
    return frames[0][:frames_per_video:16].tolist()


def smoothing(public: Public, dtype: torch.dtype) -> dict:
    """infer.py's smoothing (utils.slide_smooth / fixed_smooth, cut to the video's length) of the rule's scores."""
    scores = torch.from_numpy(rule_smoothing_scores()).to(dtype)
    out = {}
    for kappa in KAPPAS:
        for kind, smooth in (("slide", public.utils.slide_smooth), ("fixed", public.utils.fixed_smooth)):
            for length, suffix in zip(SMOOTHED_LENGTHS, ("", "_short"), strict=True):
                out[f"{kind}_{kappa}{suffix}"] = smooth(scores[:length], kappa)[:length].tolist()
    return out


def cosine_epoch_rates(cfg) -> list[float]:
    """main.py's learning rate of each epoch: Adam(lr=cfg.lr), CosineAnnealingLR(T_max=60, eta_min=0) per epoch."""
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=60, eta_min=0)
    rates = []
    for _ in range(cfg.max_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def run_case(public: Public, name: str, callers: set[str]) -> dict:
    case = dict(CASES[name])
    cfg = public.config(case)
    model = public.model.XModel(cfg)
    params = {n: parameter_spec(n, tuple(t.shape), k, cfg) for k, (n, t) in enumerate(model.state_dict().items())}
    out = {
        "config": {key: getattr(cfg, key) for key in ("win_size", "gamma", "bias", "norm", "t_step", "temp", "lamda",
                                                     "lr", "hid_dim", "out_dim", "smooth", "kappa", "max_epoch")},
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "params": params,
    }
    with tempfile.TemporaryDirectory() as folder:
        for dtype in (torch.float32, torch.float64):
            if name == "sh":
                loader, data = sh_loader(public, case, Path(folder), dtype)
                case["class_sets"] = sh_class_sets(data)
            else:
                loader = tensor_batch(case)
            cast = float_casts_to_float64(callers) if dtype == torch.float64 else torch.Tensor.float
            with patched(torch.Tensor, "float", cast):
                out[str(dtype)[6:]] = one_step(public, case, cfg, params, loader, dtype)
    out["batch"] = {key: case[key] for key in ("lengths", "labels", "class_sets", "prompt_classes")}
    return out


def checked_repo(repo: Path) -> Path:
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0 or head.stdout.strip() != COMMIT:
        found = head.stdout.strip() or head.stderr.strip()
        sys.exit(f"--repo {repo}: expected a checkout of {REPOSITORY} at {COMMIT}, found {found!r}")
    return repo.resolve()


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a checkout of {REPOSITORY} at {COMMIT}")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write (default: %(default)s)")
    args = parser.parse_args()
    public = Public(checked_repo(args.repo))
    torch.set_num_threads(1)
    callers: set[str] = set()
    with patched(torch.Tensor, "cuda", lambda tensor, *args, **kwargs: tensor):
        cases = {name: run_case(public, name, callers) for name in CASES}
        smoothed = {str(dtype)[6:]: smoothing(public, dtype) for dtype in (torch.float32, torch.float64)}
    if callers != {"train.py:train_func", "test.py:test_func"}:
        sys.exit(f"Tensor.float was patched for these casts only, but was called from {sorted(callers)}")
    reference = {
        "produced_by": {
            "script": SCRIPT,
            "code": f"{REPOSITORY}@{COMMIT}",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cpu": f"{cpu_name()} ({platform.machine()}), {torch.get_num_threads()} torch thread",
            "patched": ["Tensor.cuda returns the tensor", "cfg.dropout = 0",
                        "SH: cfg.feat_prefix, train_list, token_feat in a temporary folder; cfg.max_seqlen = segments",
                        "float64 run: Tensor.float returns float64 (called by train_func and test_func only)",
                        "test.py's roc_curve wrapped to read test_func's scores"],
        },
        **RULES,
        "feature_dim": FEATURE_DIM,
        "segments": SEGMENTS,
        "test_shape": list(TEST_SHAPE),
        **cases,
        "cosine_epoch_lr": cosine_epoch_rates(public.config(CASES["ucf"])),
        "smoothing": {"scores": rule_smoothing_scores().tolist(), **smoothed},
    }
    args.out.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
