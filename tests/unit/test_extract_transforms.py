"""The snippet-wide transforms equal a plain per-frame PIL/NumPy transcription of the published steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vadbench.extract.sources import Source, read_frames
from vadbench.extract.transforms import CROP_ORDERS, crops, resize_shorter, resize_to, shorter_side_size
from vadbench.extract.transforms import normalise as normalise_tensor

Image = pytest.importorskip("PIL.Image")

# The per-frame transcription: torchvision's TenCrop / five_crop / center_crop as PIL crops of one image.


def five_crop(image, size: int) -> dict[str, object]:
    """torchvision ``five_crop``: corners flush with the edges, center at int(round((side - size) / 2)); and
    Caffe's test-phase crop at (side - size) / 2 in C integer division."""
    width, height = image.size
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    caffe_top, caffe_left = int((height - size) / 2), int((width - size) / 2)
    return {
        "caffe-center": image.crop((caffe_left, caffe_top, caffe_left + size, caffe_top + size)),
        "top-left": image.crop((0, 0, size, size)),
        "top-right": image.crop((width - size, 0, width, size)),
        "bottom-left": image.crop((0, height - size, size, height)),
        "bottom-right": image.crop((width - size, height - size, width, height)),
        "center": image.crop((left, top, left + size, top + size)),
    }


CORNERS = ["top-left", "top-right", "bottom-left", "bottom-right"]
REFERENCE_ORDERS = {
    "torchvision-ten": ([*CORNERS, "center"], True),
    "center-first-ten": (["center", *CORNERS], True),
    "center-first-five": (["center", *CORNERS], False),
    "center": (["center"], False),
    "caffe-center": (["caffe-center"], False),
}


def reference_crops(image, size: int, order: str) -> list[np.ndarray]:
    """The crops of one PIL frame in `order`, then (ten-crop orders) those of the mirrored frame."""
    regions, mirrored = REFERENCE_ORDERS[order]
    images = [image, image.transpose(Image.FLIP_LEFT_RIGHT)] if mirrored else [image]
    return [np.asarray(five_crop(each, size)[region]) for each in images for region in regions]


def reference_snippet(frames, size: int, order: str, shorter: int | None = None, fixed=None) -> np.ndarray:
    """Per frame: PIL bilinear resize (shorter side by torchvision's rule, or a fixed size), then crops."""
    per_frame = []
    for frame in frames:
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(frame)
        width, height = fixed or shorter_side_size(*image.size, shorter)
        per_frame.append(reference_crops(image.resize((width, height), Image.BILINEAR), size, order))
    return np.stack(per_frame, axis=1)  # [C, N, size, size, 3]


def random_clip(frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise, so resizing and cropping errors show."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = (xs * 255 // max(width - 1, 1) + ys * 128 // max(height - 1, 1))[None, :, :, None]
    noise = rng.integers(-40, 40, (frames, height, width, 3))
    return np.clip(base + noise + np.arange(3) * 20, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((320, 240), (341, 256)), ((360, 240), (384, 256)), ((238, 158), (385, 256)), ((240, 320), (256, 341)),
     ((256, 256), (256, 256)), ((341, 256), (341, 256))],
)
def test_shorter_side_follows_torchvision_resize_int_rule(size, expected):
    """torchvision ``Resize(256)``: the longer side is ``int(256 * long / short)``, truncated."""
    assert shorter_side_size(*size, 256) == expected


@pytest.mark.parametrize("order", CROP_ORDERS)
@pytest.mark.parametrize(("width", "height"), [(320, 240), (360, 240), (343, 257)])
def test_resize_shorter_then_crops_equal_the_per_frame_pil_steps(order, width, height):
    clip = random_clip(5, width, height)
    resized = resize_shorter(clip, 256)
    assert resized.shape[1:3] == shorter_side_size(width, height, 256)[::-1]
    assert np.array_equal(crops(resized, 224, order), reference_snippet(clip, 224, order, shorter=256))


def test_resize_to_a_fixed_size_then_ten_crop_equals_the_per_frame_pil_steps():
    clip = random_clip(4, 320, 240, seed=1)
    resized = resize_to(clip, 340, 256)
    assert resized.shape == (4, 256, 340, 3)
    expected = reference_snippet(clip, 224, "center-first-ten", fixed=(340, 256))
    assert np.array_equal(crops(resized, 224, "center-first-ten"), expected)


def test_frames_already_at_size_are_not_resampled():
    clip = random_clip(2, 341, 256)
    assert resize_shorter(clip, 256) is clip and resize_to(clip, 341, 256) is clip


def test_grey_tif_frames_read_resized_and_cropped_equal_the_per_frame_pil_steps(tmp_path):
    """UCSD-like grey .tif frames (Ped1 is 238x158): read as RGB, then the RTFM steps, frame by frame."""
    folder = tmp_path / "Test001"
    folder.mkdir()
    grey = random_clip(3, 238, 158, seed=2)[..., 0]
    for index, frame in enumerate(grey):
        Image.fromarray(frame, mode="L").save(folder / f"{index + 1:03d}.tif")
    frames = np.stack(list(read_frames(Source("Test001", folder, "frames"))))
    ours = crops(resize_shorter(frames, 256), 224, "torchvision-ten")
    pil_frames = [Image.open(folder / f"{index + 1:03d}.tif").convert("RGB") for index in range(3)]
    assert np.array_equal(ours, reference_snippet(pil_frames, 224, "torchvision-ten", shorter=256))


def test_center_and_flips_follow_torchvision_exactly():
    """Center of a 341-wide frame: left = round(58.5) = 58 (half to even); flipped top-left mirrors top-right."""
    frame = random_clip(1, 341, 256, seed=3)
    ten = crops(frame, 224, "torchvision-ten")
    assert np.array_equal(ten[4, 0], frame[0, 16:240, 58:282])
    assert np.array_equal(ten[5, 0], frame[0, :224, -224:][:, ::-1])
    assert np.array_equal(crops(frame, 224, "center")[0], ten[4])
    wu = crops(frame, 224, "center-first-ten")
    assert np.array_equal(wu[[0, 1, 2, 3, 4, 5]], ten[[4, 0, 1, 2, 3, 9]])


def test_caffe_center_rounds_down_where_torchvision_rounds_half_to_even():
    """C3D's 171x128 frames cropped to 112: Caffe takes left 29, top 8; torchvision's center left round(29.5) = 30."""
    frame = random_clip(1, 171, 128, seed=4)
    assert np.array_equal(crops(frame, 112, "caffe-center")[0, 0], frame[0, 8:120, 29:141])
    assert np.array_equal(crops(frame, 112, "center")[0, 0], frame[0, 8:120, 30:142])


def test_crops_larger_than_the_frame_are_refused():
    with pytest.raises(ValueError, match="crop size 224 is larger than the 200x150 frames"):
        crops(random_clip(1, 200, 150), 224, "center")


def normalise(pixels: np.ndarray, mean, std) -> np.ndarray:
    """The device step on the CPU, as NumPy."""
    return normalise_tensor(torch.from_numpy(pixels), mean, std).numpy()


def test_normalise_0_255_pixels_like_tushar_n():
    """Tushar-N/RTFM: ``F.to_tensor(x) * 255`` (float32), then ``sub_(114.75).div_(57.375)``."""
    ten = crops(resize_shorter(random_clip(3, 320, 240), 256), 224, "torchvision-ten")
    expected = (ten.astype(np.float32) / np.float32(255) * np.float32(255) - np.float32(114.75)) / np.float32(57.375)
    ours = normalise(ten, 114.75, 57.375)
    assert ours.dtype == np.float32 and ours.shape == ten.shape
    np.testing.assert_allclose(ours, expected, rtol=2e-7, atol=1e-6)
    exact = (ten.astype(np.float64) - 114.75) / 57.375
    np.testing.assert_allclose(ours, exact, rtol=6e-8, atol=0)  # one float32 rounding of the exact value


def test_normalise_to_minus_one_one_like_the_inception_i3d():
    """piergiaj / Wu et al.: ``(x / 255.) * 2 - 1`` in float64, stored as float32."""
    five = crops(resize_shorter(random_clip(3, 360, 240), 256), 224, "center-first-five")
    expected = ((five / 255.0) * 2 - 1).astype(np.float32)
    np.testing.assert_allclose(normalise(five, 127.5, 127.5), expected, rtol=0, atol=1.2e-7)


def test_normalise_per_channel_values():
    pixels = np.array([[[0, 128, 255]]], dtype=np.uint8)
    out = normalise(pixels, [0.0, 128.0, 255.0], [1.0, 2.0, 5.0])
    assert out.tolist() == [[[0.0, 0.0, 0.0]]]
    assert normalise(pixels, [10.0, 28.0, 55.0], [10.0, 100.0, 100.0]).tolist() == [[[-1.0, 1.0, 2.0]]]
