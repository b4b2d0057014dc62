import pytest
import torch
import torch.nn.functional as F

from core.training.augmentation import (AugmentConfig, affine_grid, affine_matrices, affine_theta, augment_batch,
                                       v2_transform)


def digit_batch(n=16):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a vertical bar: rotation visibly tilts it
    return x


@pytest.mark.parametrize("height, width", [(28, 28), (12, 20)])
def test_our_affine_grid_is_pytorchs(height, width):
    """The written-out grid against F.affine_grid (a batched matrix product of the same sums): the
    same sampling points to a millionth of the frame (on the 2-core CPU the same bits), rectangular
    images included."""
    theta = affine_matrices(64, AugmentConfig(rotation=30, translate=0.2, scale=0.2, shear=10), torch.Generator()
                            .manual_seed(5), torch.device("cpu"))
    ours = affine_grid(theta, height, width)
    theirs = F.affine_grid(theta, [64, 1, height, width], align_corners=False)
    assert ours.shape == theirs.shape == (64, height, width, 2)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert (theirs[1] - theirs[0]).abs().max() > 0.01  # each image its own map


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


def smooth_digit() -> torch.Tensor:
    """Two blurred blobs, off-centre and of different sizes, so any wrong turn, shift or zoom shows."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    blobs = torch.exp(-((xx - 10) ** 2 + (yy - 16) ** 2) / 20) + 0.5 * torch.exp(-((xx - 19) ** 2 + (yy - 8) ** 2) / 8)
    return blobs[None, None]


@pytest.mark.parametrize("angle, shift, zoom", [(12.0, (0.0, 0.0), 1.0), (0.0, (0.1, -0.05), 1.0),
                                                (0.0, (0.0, 0.0), 1.2), (-7.0, (0.05, 0.1), 0.9),
                                                (25.0, (-0.1, 0.0), 1.1)])
def test_rotation_shift_and_zoom_match_torchvision_pixel_for_pixel(angle, shift, zoom):
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TF

    image = smooth_digit()
    theta = affine_theta(torch.tensor([angle]), torch.tensor([0.0]), torch.tensor([zoom]), torch.tensor([shift]))
    grid = affine_grid(theta, 28, 28)
    ours = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    theirs = TF.affine(image, angle=angle, translate=[shift[0] * 28, shift[1] * 28], scale=zoom, shear=[0.0, 0.0],
                       interpolation=v2.InterpolationMode.BILINEAR)
    assert (ours - theirs).abs().max() < 1e-4
    assert (ours - image).abs().max() > 0.1  # the transform did move the digit


def test_our_shear_is_torchvisions_mirrored():
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TF

    image = smooth_digit()
    theta = affine_theta(torch.tensor([0.0]), torch.tensor([10.0]), torch.tensor([1.0]), torch.zeros(1, 2))
    ours = F.grid_sample(image, affine_grid(theta, 28, 28), align_corners=False)

    def theirs(shear: float) -> torch.Tensor:
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0, shear=[shear, 0.0],
                         interpolation=v2.InterpolationMode.BILINEAR)
    assert (ours - theirs(-10.0)).abs().max() < 1e-4 and (ours - theirs(10.0)).abs().max() > 0.1


def test_v2_preview_draws_new_parameters_on_every_call():
    t = v2_transform(AugmentConfig(rotation=20, translate=0.1, brightness=0.2, erase=0.2))
    torch.manual_seed(0)
    outs = [t(digit_batch(1)[0]) for _ in range(4)]
    assert all(o.shape == (1, 28, 28) for o in outs)
    assert len({tuple(o.flatten().round(decimals=3).tolist()) for o in outs}) == 4
