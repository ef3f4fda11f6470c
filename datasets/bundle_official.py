"""Regenerate the adapters' bundled official files from a copy of the published files.

    python -m vadbench.datasets.bundle_official DATA [--lengths tests/data/public_test_lengths.json]

DATA holds the files as published, with ``MANIFEST.tsv`` (``local_path``, ``origin_repo``,
``path_in_repo``, ``commit``, ``size_bytes``, ``sha256``) giving each one's origin. Each adapter's
``official/`` folder is rewritten with its files and a ``SOURCES.tsv`` built from that manifest; the
checksums of the copies are verified first. ``--lengths`` also writes the test fixture of each test
video's T in the public extractions (the fake data roots of the tests need real T, not real features).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from vadbench.data.annotations import parse_feature_list
from vadbench.data.official import FOLDER, Source, pack_masks, write_sources

HERE = Path(__file__).resolve().parent
SULTANI = "ucf_crime/WaqasSultani_AnomalyDetectionCVPR2018"
VERBATIM = "verbatim"
#: adapter folder -> (bundled name, path under DATA) of the files kept byte for byte
COPIED = {
    "ucf_crime": (
        ("Temporal_Anomaly_Annotation.txt", f"{SULTANI}/Temporal_Anomaly_Annotation.txt"),
        ("Anomaly_Train.txt", f"{SULTANI}/Anomaly_Train.txt"),
    ),
    "shanghaitech": (
        ("SH_Train.txt", "shanghaitech/SH_Train.txt"),
        ("SH_Test.txt", "shanghaitech/SH_Test.txt"),
        ("relabel.list", "shanghaitech/yujiangpu20_PEL4VAD/relabel.list"),
    ),
    "xd_violence": (("annotations.txt", "xd_violence/nwpu-zxr_VadCLIP/annotations.txt"),),
    "ucsd_peds": (
        ("UCSDped2.m", "ucsd_peds/priyanka011011_Crowd-Anomaly-Detection/UCSDped2.m"),
        ("UCSDped1.m", "ucsd_peds/priyanka011011_Crowd-Anomaly-Detection/UCSDped1.m~"),
    ),
}
#: (bundled name, path under DATA) of the list files reduced to their video ids, in list order
ID_LISTS = {
    "xd_violence": (
        ("train_videos.txt", "xd_violence/Roc-Ng_XDVioDet/rgb.list"),
        ("test_videos.txt", "xd_violence/Roc-Ng_XDVioDet/rgb_test.list"),
    ),
}
MASKS = ("shanghaitech", "test_frame_mask.json", "shanghaitech/test_frame_mask")
IDS = "video ids in list order, one per line (the authors' paths and crop files dropped)"
RUNS = "run-length masks (vadbench.data.official.pack_masks)"


def read_manifest(data: Path) -> dict[str, dict[str, str]]:
    with open(data / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        return {row["local_path"]: row for row in csv.DictReader(handle, delimiter="\t")}


def source(manifest: dict[str, dict[str, str]], data: Path, local: str, bundled: str, kept_as: str) -> Source:
    """The provenance of DATA/`local`, after checking that the copy is the one the manifest describes."""
    row = manifest[local]
    digest = hashlib.sha256((data / local).read_bytes()).hexdigest()
    if digest != row["sha256"]:
        raise SystemExit(f"{data / local}: sha256 {digest} differs from MANIFEST.tsv ({row['sha256']})")
    return Source(bundled, row["origin_repo"], row["commit"], row["path_in_repo"], row["sha256"], kept_as)


def bundle(data: Path, target: Path = HERE) -> dict[str, int]:
    """Rewrite every adapter's official folder under `target` (the adapters' package) from DATA;
    the bytes written per folder."""
    manifest = read_manifest(data)
    written = {}
    for adapter in sorted({*COPIED, *ID_LISTS, MASKS[0]}):
        folder = target / adapter / FOLDER
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        sources = []
        for name, local in COPIED.get(adapter, ()):
            shutil.copyfile(data / local, folder / name)
            sources.append(source(manifest, data, local, name, VERBATIM))
        for name, local in ID_LISTS.get(adapter, ()):
            videos = parse_feature_list((data / local).read_text(encoding="utf-8"), local)
            (folder / name).write_text("".join(f"{video.video_id}\n" for video in videos), encoding="utf-8")
            sources.append(source(manifest, data, local, name, IDS))
        if adapter == MASKS[0]:
            files = sorted((data / MASKS[2]).glob("*.npy"))
            masks = {path.stem: np.load(path, allow_pickle=False) for path in files}
            (folder / MASKS[1]).write_text(pack_masks(masks), encoding="utf-8")
            sources += [source(manifest, data, f"{MASKS[2]}/{p.name}", MASKS[1], RUNS) for p in files]
        write_sources(folder, sources)
        written[adapter] = sum(path.stat().st_size for path in folder.iterdir())
    return written


def test_lengths(data: Path) -> dict[str, object]:
    """T of each test video in the public extractions, from the published per-video ground truths."""
    ucf = sorted((data / "ucf_crime/yujiangpu20_PEL4VAD/single_gt").glob("*__9_gt.npy"))
    xd = sorted((data / "xd_violence/yujiangpu20_PEL4VAD/xd-gt").glob("*__0.npy"))
    sh = json.loads((data / "shanghaitech/louisYen_S3R/shanghaitech_ground_truth.testing.json").read_text())
    return {
        "about": "T (snippets) of each test video in a public feature extraction = published frames / 16; "
        "written by python -m vadbench.datasets.bundle_official",
        "ucf-crime": {
            "from": "yujiangpu20/PEL4VAD list/ucf/single_gt (Wu et al.'s I3D)",
            "lengths": {p.name[: -len("__9_gt.npy")]: len(np.load(p, allow_pickle=False)) // 16 for p in ucf},
        },
        "shanghaitech": {
            "from": "louisYen/S3R data/shanghaitech/shanghaitech_ground_truth.testing.json (RTFM's I3D)",
            "lengths": {video: entry["num_frames"] // 16 for video, entry in sh.items()},
        },
        "xd-violence": {
            "from": "yujiangpu20/PEL4VAD list/xd/xd-gt (Wu et al.'s I3D)",
            "lengths": {p.name[: -len("__0.npy")]: len(np.load(p, allow_pickle=False)) // 16 for p in xd},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the published files, with MANIFEST.tsv")
    parser.add_argument("--lengths", type=Path, help="also write the tests' T-per-test-video fixture here")
    args = parser.parse_args()
    for adapter, size in bundle(args.data).items():
        print(f"{adapter}/{FOLDER}: {size:,} bytes")
    if args.lengths:
        args.lengths.write_text(json.dumps(test_lengths(args.data), indent=1, sort_keys=True) + "\n")
        print(f"{args.lengths}: {args.lengths.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
