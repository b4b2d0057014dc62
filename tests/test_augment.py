import pytest
import torch

from core.training.augmentation import AugmentConfig, augment_batch, v2_transform


def digit_batch(n=16):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a vertical bar: rotation visibly tilts it
    return x


def test_off_is_identity():
    x = digit_batch()
    assert augment_batch(x, AugmentConfig()) is x


def test_each_image_gets_its_own_parameters():
    x = digit_batch()
    out = augment_batch(x, AugmentConfig(rotation=30, translate=0.1), torch.Generator().manual_seed(0))
    flat = out.flatten(1)
    distinct = {tuple(row.round(decimals=3).tolist()) for row in flat}
    assert len(distinct) == len(x)  # one parameter draw per image, not per batch
    assert 0 <= out.min() and out.max() <= 1


def test_seeded_generator_is_reproducible():
    cfg = AugmentConfig(rotation=15, scale=0.1, shear=5, brightness=0.3, contrast=0.3, erase=0.3)
    a = augment_batch(digit_batch(), cfg, torch.Generator().manual_seed(3))
    b = augment_batch(digit_batch(), cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_rotation_by_zero_degrees_keeps_the_image():
    x = digit_batch()
    out = augment_batch(x, AugmentConfig(rotation=1e-6), torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-3)


def test_brightness_only_scales():
    x = digit_batch()
    out = augment_batch(x * 0.5, AugmentConfig(brightness=0.5), torch.Generator().manual_seed(0))
    ratio = out[:, :, 10, 13] / 0.5
    assert ((ratio >= 0.5 - 1e-6) & (ratio <= 1.5 + 1e-6)).all() and ratio.std() > 0


def test_erase_blanks_some_pixels_of_some_images():
    x = torch.ones(64, 1, 28, 28)
    out = augment_batch(x, AugmentConfig(erase=0.3), torch.Generator().manual_seed(0))
    erased = (out.flatten(1) == 0).any(1)
    assert 10 < erased.sum() < 54


@pytest.mark.parametrize("field, value", [("rotation", -1), ("translate", 0.8), ("erase", 2.0)])
def test_out_of_range_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_v2_preview_path_runs_per_image():
    t = v2_transform(AugmentConfig(rotation=20, translate=0.1, brightness=0.2, erase=0.2))
    out = t(digit_batch(1)[0])
    assert out.shape == (1, 28, 28)
