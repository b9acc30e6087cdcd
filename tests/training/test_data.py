"""Dataset readers on well-formed and malformed folders (built synthetically), and the
training augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.data.datasets import open_dataset, read_image, read_mask, to_channels
from inspect_core.errors import DataError, InspectError
from inspect_core.training.augment import AugmentConfig, build_augment

CLASSES = ["background", "scratch", "dent"]


def _gray(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _mask(h=24, w=32):
    m = np.zeros((h, w), np.uint8)
    m[4:8, 4:10] = 1
    m[12:16, 20:30] = 2
    m[0, 0] = 255
    return m


def _shared(root: Path, n=2, split="train", classes=CLASSES, image=None, ext=".png") -> Path:
    """A well-formed dataset in the shared layout."""
    root.mkdir(parents=True, exist_ok=True)
    if classes is not None:
        (root / "classes.json").write_text(
            json.dumps(
                {"classes": classes, "ignore_index": 255, "name": "synthetic", "license": "CC0"}
            )
        )
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = _gray(seed=i) if image is None else image
        assert cv2.imwrite(str(root / split / "images" / f"s{i}{ext}"), img)
        assert cv2.imwrite(str(root / split / "masks" / f"s{i}.png"), _mask(*img.shape[:2]))
    return root


# --------------------------------------------------------------------------- shared layout


def test_reads_a_well_formed_dataset(tmp_path):
    ds = open_dataset(_shared(tmp_path / "d", n=3), "train")
    assert len(ds) == 3 and ds.classes == CLASSES and ds.ignore_index == 255
    assert ds.name == "synthetic" and ds.license == "CC0" and ds.channels == 1
    img, mask = ds.load(1)
    np.testing.assert_array_equal(img, _gray(seed=1))
    np.testing.assert_array_equal(mask, _mask())
    assert img.dtype == mask.dtype == np.uint8


def test_fingerprint_names_the_file_list(tmp_path):
    root = _shared(tmp_path / "d", n=2)
    fp = open_dataset(root, "train").fingerprint()
    assert len(fp) == 64 and fp == open_dataset(root, "train").fingerprint()
    _shared(root, n=3)  # one more image
    assert open_dataset(root, "train").fingerprint() != fp


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        open_dataset(tmp_path / "nowhere", "train")


def test_missing_classes_json(tmp_path):
    root = _shared(tmp_path / "d", classes=None)
    with pytest.raises(DataError) as e:
        open_dataset(root, "train")
    assert "classes.json" in str(e.value) and str(root) in str(e.value)
    assert isinstance(e.value, InspectError)


@pytest.mark.parametrize(
    "content,match",
    [
        ("{not json", "not valid JSON"),
        ('{"classes": ["only"]}', "at least two"),
        ('{"classes": "background,defect"}', "list"),
    ],
)
def test_malformed_classes_json(tmp_path, content, match):
    root = _shared(tmp_path / "d")
    (root / "classes.json").write_text(content)
    with pytest.raises(DataError, match=match):
        open_dataset(root, "train")


def test_missing_split(tmp_path):
    root = _shared(tmp_path / "d")
    with pytest.raises(DataError, match="'val' has no images folder"):
        open_dataset(root, "val")


def test_split_without_images(tmp_path):
    root = _shared(tmp_path / "d", n=0)
    with pytest.raises(DataError, match="no images"):
        open_dataset(root, "train")


def test_missing_mask_names_the_image(tmp_path):
    root = _shared(tmp_path / "d", n=2)
    (root / "train" / "masks" / "s1.png").unlink()
    with pytest.raises(DataError) as e:
        open_dataset(root, "train")
    assert "s1.png" in str(e.value) and "mask" in str(e.value)


def test_size_mismatch_names_both_files(tmp_path):
    root = _shared(tmp_path / "d", n=2)
    cv2.imwrite(str(root / "train" / "masks" / "s1.png"), _mask(20, 32))
    ds = open_dataset(root, "train")
    ds.load(0)
    with pytest.raises(DataError) as e:
        ds.load(1)
    msg = str(e.value)
    assert str(root / "train" / "masks" / "s1.png") in msg and "s1.png" in msg
    assert "32x20" in msg and "32x24" in msg


def test_mask_value_outside_classes(tmp_path):
    root = _shared(tmp_path / "d", n=1)
    m = _mask()
    m[5, 5] = 7
    cv2.imwrite(str(root / "train" / "masks" / "s0.png"), m)
    with pytest.raises(DataError) as e:
        open_dataset(root, "train").load(0)
    assert "s0.png" in str(e.value) and "[7]" in str(e.value) and "classes.json" in str(e.value)


def test_colour_mask_is_refused(tmp_path):
    root = _shared(tmp_path / "d", n=1)
    m = np.dstack([_mask(), _mask(), _mask()])
    m[5, 5] = (0, 1, 2)
    cv2.imwrite(str(root / "train" / "masks" / "s0.png"), m)
    with pytest.raises(DataError, match="colour channels") as e:
        open_dataset(root, "train").load(0)
    assert "s0.png" in str(e.value)


def test_mask_saved_as_three_equal_channels_is_accepted(tmp_path):
    p = tmp_path / "m.png"
    cv2.imwrite(str(p), np.dstack([_mask()] * 3))
    np.testing.assert_array_equal(read_mask(p, 3), _mask())


def test_sixteen_bit_mask_is_refused(tmp_path):
    p = tmp_path / "m.png"
    cv2.imwrite(str(p), _mask().astype(np.uint16))
    with pytest.raises(DataError, match="8-bit"):
        read_mask(p, 3)


@pytest.mark.parametrize("content", [b"", b"this is not a png at all"])
def test_empty_or_non_image_file(tmp_path, content):
    root = _shared(tmp_path / "d", n=2)
    bad = root / "train" / "images" / "s0.png"
    bad.write_bytes(content)
    with pytest.raises(DataError) as e:
        open_dataset(root, "train").load(0)
    assert str(bad) in str(e.value)
    assert ("empty" if not content else "not a readable image") in str(e.value)


def test_non_image_files_are_skipped(tmp_path):
    root = _shared(tmp_path / "d", n=2)
    (root / "train" / "images" / "notes.txt").write_text("hello")
    assert len(open_dataset(root, "train")) == 2


# --------------------------------------------------------------------------- image decoding


def test_sixteen_bit_image_is_scaled_to_8_bit(tmp_path):
    # full range to full range (x / 257, rounded), not a plain shift by 8 bits
    img16 = np.array([[0, 257, 257 * 100, 200], [65535, 128, 32896, 65280]], np.uint16)
    p = tmp_path / "i.png"
    cv2.imwrite(str(p), img16)
    out = read_image(p)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1, 100, 1], [255, 0, 128, 254]])


def test_rgba_is_converted_to_rgb(tmp_path):
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    p = tmp_path / "i.png"
    cv2.imwrite(str(p), bgra)
    out = read_image(p)
    assert out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out[0, 0], [30, 20, 10])


def test_colour_image_is_rgb(tmp_path):
    bgr = np.zeros((6, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV order
    p = tmp_path / "i.png"
    cv2.imwrite(str(p), bgr)
    out = read_image(p)
    assert out.shape == (6, 7, 3) and out[0, 0].tolist() == [0, 0, 200]


def test_small_colour_mark_keeps_an_image_colour(tmp_path):
    g = _gray(40, 50)
    bgr = np.dstack([g, g, g])
    bgr[5, 5] = (0, 0, 255)  # one red pixel on a gray part
    p = tmp_path / "i.png"
    cv2.imwrite(str(p), bgr)
    out = read_image(p)
    assert out.shape == (40, 50, 3) and out[5, 5].tolist() == [255, 0, 0]


def test_gray_saved_as_three_channel_jpeg_becomes_gray(tmp_path):
    g = _gray(40, 50)
    p = tmp_path / "i.jpg"
    cv2.imwrite(str(p), np.dstack([g, g, g]))
    out = read_image(p)
    assert out.ndim == 2 and out.shape == (40, 50)
    assert np.abs(out.astype(int) - g).mean() < 20  # lossy, but the same picture


def test_gray_jpeg_dataset_is_one_channel(tmp_path):
    g = _gray()
    root = _shared(tmp_path / "d", n=1, image=np.dstack([g, g, g]), ext=".jpg")
    assert open_dataset(root, "train").channels == 1


def test_colour_dataset_is_three_channels(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ds = open_dataset(_shared(tmp_path / "d", n=1, image=rgb), "train")
    assert ds.channels == 3 and ds.load(0)[0].shape == (24, 32, 3)


def test_too_many_pixels(tmp_path):
    p = tmp_path / "i.png"
    cv2.imwrite(str(p), _gray())
    with pytest.raises(DataError, match="exceeds"):
        read_image(p, max_pixels=100)


def test_to_channels():
    g = _gray()
    assert to_channels(g, 1) is g
    rgb = to_channels(g, 3)
    assert rgb.shape == (24, 32, 3) and (rgb[..., 0] == g).all() and (rgb[..., 2] == g).all()
    np.testing.assert_array_equal(to_channels(rgb, 1), g)
    with pytest.raises(ValueError):
        to_channels(g, 2)


# --------------------------------------------------------------------------- MVTec AD layout


def _mvtec(root: Path) -> Path:
    for folder, names in [
        ("train/good", ["000", "001"]),
        ("test/good", ["000"]),
        ("test/crack", ["000", "001"]),
        ("test/scratch", ["000"]),
    ]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            cv2.imwrite(str(root / folder / f"{n}.png"), _gray(seed=len(folder) + int(n)))
    for defect, names in [("crack", ["000", "001"]), ("scratch", ["000"])]:
        (root / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
        for n in names:
            m = np.zeros((24, 32), np.uint8)
            m[5:10, 5:10] = 255
            cv2.imwrite(str(root / "ground_truth" / defect / f"{n}_mask.png"), m)
    return root


def test_mvtec_layout(tmp_path):
    root = _mvtec(tmp_path / "bottle")
    train = open_dataset(root, "train")
    assert train.classes == ["background", "crack", "scratch"]
    assert len(train) == 2 and train.name == "bottle" and "MVTec" in train.license
    img, mask = train.load(0)
    assert img.shape == (24, 32) and not mask.any()

    test = open_dataset(root, "test")
    assert [s.image.relative_to(root).as_posix() for s in test.samples] == [
        "test/crack/000.png",
        "test/crack/001.png",
        "test/good/000.png",
        "test/scratch/000.png",
    ]
    by_name = {s.image.relative_to(root).as_posix(): i for i, s in enumerate(test.samples)}
    _, crack = test.load(by_name["test/crack/001.png"])
    _, scratch = test.load(by_name["test/scratch/000.png"])
    _, good = test.load(by_name["test/good/000.png"])
    assert set(np.unique(crack)) == {0, 1} and crack[5:10, 5:10].all() and crack.sum() == 25
    assert set(np.unique(scratch)) == {0, 2} and (scratch[5:10, 5:10] == 2).all()
    assert not good.any()
    assert len(open_dataset(root, "val")) == len(test)  # val falls back to test


def test_mvtec_missing_ground_truth(tmp_path):
    root = _mvtec(tmp_path / "bottle")
    (root / "ground_truth" / "crack" / "001_mask.png").unlink()
    with pytest.raises(DataError) as e:
        open_dataset(root, "test")
    assert "001.png" in str(e.value) and "001_mask.png" in str(e.value)


# --------------------------------------------------------------------------- augmentation


def _coded(h, w, seed=0):
    """An image whose value encodes the mask class (40, 120, 200), so alignment is checkable."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(h * w // 200):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        mask[y : y + rng.integers(4, 12), x : x + rng.integers(4, 12)] = rng.integers(1, 3)
    return (40 + 80 * mask).astype(np.uint8), mask


def _geometry_only(**kw):
    cfg = dict(noise=0.0, brightness_contrast=0.0)
    cfg.update(kw)
    return AugmentConfig(**cfg)


def test_flips_pad_and_crop_keep_image_and_mask_aligned():
    aug = build_augment(_geometry_only(rotate=0, scale=0, rotate90=True, crop=48), seed=0)
    img, mask = _coded(40, 60)  # smaller than the crop in height: padded
    for _ in range(20):
        r = aug(image=img, mask=mask)
        im, m = r["image"], r["mask"]
        assert im.shape == m.shape == (48, 48)
        pad = m == 255
        assert pad.any()
        assert (im[pad] == 0).all()  # padding: image 0, mask ignore (not background)
        np.testing.assert_array_equal(im[~pad], 40 + 80 * m[~pad])


def test_affine_keeps_alignment_and_mask_values():
    aug = build_augment(_geometry_only(rotate=15, scale=0.15, crop=64), seed=1)
    img, mask = _coded(64, 64, seed=3)
    for _ in range(10):
        r = aug(image=img, mask=mask)
        m = r["mask"]
        assert set(np.unique(m)) <= {0, 1, 2, 255}  # nearest neighbour: no blended classes
        # away from class boundaries the image still says which class the mask holds
        decoded = np.clip(np.round((r["image"].astype(float) - 40) / 80), 0, 2)
        defect = (m != 255) & (m > 0)
        assert defect.sum() > 50
        assert (decoded[defect] == m[defect]).mean() > 0.85  # only boundary pixels may differ


def test_same_seed_same_augmentation_and_transforms_are_independent():
    img, mask = _coded(32, 32)
    cfg = _geometry_only(rotate=0, scale=0, crop=32)
    outs = []
    for _ in range(2):
        aug = build_augment(cfg, seed=7)
        outs.append([aug(image=img, mask=mask)["image"] for _ in range(40)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    # horizontal and vertical flips draw separately: all four combinations occur
    kinds = {
        next(
            k
            for k, f in enumerate([img, img[:, ::-1], img[::-1], img[::-1, ::-1]])
            if np.array_equal(o, f)
        )
        for o in outs[0]
    }
    assert kinds == {0, 1, 2, 3}
    other = build_augment(cfg, seed=8)
    assert any(not np.array_equal(other(image=img, mask=mask)["image"], o) for o in outs[0])


def test_defect_crop_bias_centres_crops_on_defects():
    img = np.full((200, 200), 40, np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[150:153, 30:33] = 1
    biased = build_augment(_geometry_only(rotate=0, scale=0, crop=32, defect_crop_bias=1.0), seed=0)
    assert all(biased(image=img, mask=mask)["mask"].any() for _ in range(20))
    plain = build_augment(_geometry_only(rotate=0, scale=0, crop=32), seed=0)
    assert sum(plain(image=img, mask=mask)["mask"].any() for _ in range(20)) < 10


def test_rare_crop_bias_crops_hold_a_rare_class():
    from inspect_core.data.datasets import Dataset
    from inspect_core.training.trainset import common_classes

    img = np.full((200, 200), 40, np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[100:, :] = 1  # two common classes and a rare third in one corner
    mask[10:14, 170:174] = 2
    cfg = _geometry_only(rotate=0, scale=0, crop=32, rare_crop_bias=1.0)
    biased = build_augment(cfg, seed=0, common_classes=[0, 1])
    assert all((biased(image=img, mask=mask)["mask"] == 2).any() for _ in range(20))
    plain = build_augment(_geometry_only(rotate=0, scale=0, crop=32), seed=0)
    assert sum((plain(image=img, mask=mask)["mask"] == 2).any() for _ in range(20)) < 5

    class OneImage(Dataset):
        def __len__(self):
            return 1

        def load(self, i):
            return img, mask

    ds = OneImage(None, "d", ["a", "b", "c"], 255, "train")
    assert common_classes(ds) == [0, 1]  # 16 of 40,000 pixels: rare


def test_photometric_shifts_change_pixels_not_masks_and_spare_gray_images():
    rng = np.random.default_rng(0)
    rgb = rng.integers(30, 220, (64, 64, 3), np.uint8)
    mask = (rng.random((64, 64)) > 0.5).astype(np.uint8)
    colour = dict(hue=10, saturation=30, rgb_shift=20, gamma=0.3, blur=1.0, jpeg=1.0)
    aug = build_augment(
        _geometry_only(rotate=0, scale=0, hflip=False, vflip=False, crop=64, **colour), seed=0
    )
    names = [type(t).__name__ for t in aug.transforms]
    for name in (
        "RandomGamma",
        "HueSaturationValue",
        "RGBShift",
        "GaussianBlur",
        "ImageCompression",
    ):
        assert name in names
    for _ in range(5):
        r = aug(image=rgb, mask=mask)
        np.testing.assert_array_equal(r["mask"], mask)  # photometric: the mask is untouched
        assert not np.array_equal(r["image"], rgb)  # blur and JPEG always fire
    gray = build_augment(_geometry_only(crop=64, **colour), seed=0, channels=1)
    gray_names = [type(t).__name__ for t in gray.transforms]
    assert "HueSaturationValue" not in gray_names and "RGBShift" not in gray_names
    assert gray(image=rgb[..., 0], mask=mask)["image"].shape == (64, 64)
    # every new setting defaults off: an existing recipe's augmentation is unchanged
    assert [type(t).__name__ for t in build_augment(AugmentConfig(), seed=0).transforms] == [
        "HorizontalFlip",
        "VerticalFlip",
        "Affine",
        "PadIfNeeded",
        "RandomCrop",
        "RandomBrightnessContrast",
        "GaussNoise",
    ]


def test_a_12_bit_cameras_raw_values_are_read_as_16_bit_and_logged(tmp_path, caplog):
    """0..4095 in a 16-bit PNG reads as 16-bit (nearly black): the log names the file."""
    img12 = np.array([[0, 4095, 2048, 16]], np.uint16)
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), img12)
    with caplog.at_level("WARNING", logger="inspect.data"):
        np.testing.assert_array_equal(read_image(plain), [[0, 16, 8, 0]])
    assert "fit in 12 bits" in caplog.text and "plain.png" in caplog.text
    caplog.clear()
    full = tmp_path / "full.png"
    cv2.imwrite(str(full), img12 * 16)  # scaled to 16 bits, as the PNG standard stores them
    with caplog.at_level("WARNING", logger="inspect.data"):
        np.testing.assert_array_equal(read_image(full), [[0, 255, 128, 1]])
    assert not caplog.text
