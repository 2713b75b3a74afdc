"""texnets.degradation: Johnson et al. 2016's low-resolution inputs, blur then bicubic downsampling."""
import pytest
import torch
import torch.nn.functional as F

from texnets.degradation import crop_to_multiple, low_resolution
from texnets.errors import TexnetsError


def test_the_size_falls_by_the_factor_and_a_flat_image_stays_flat():
    assert low_resolution(torch.rand(2, 3, 32, 48), 4).shape == (2, 3, 8, 12)
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(low_resolution(flat, 2), torch.full((1, 3, 8, 8), 0.3))


def test_without_blur_it_is_plain_bicubic_and_the_blur_removes_detail():
    torch.manual_seed(0)
    images = torch.rand(1, 3, 32, 32)
    bicubic = F.interpolate(images, scale_factor=0.5, mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.allclose(low_resolution(images, 2, sigma=0), bicubic, atol=1e-6)
    assert low_resolution(images, 2).std() < 0.7 * bicubic.std()   # noise is mostly high frequencies


def test_sides_that_are_not_multiples_of_the_factor():
    images = torch.rand(1, 3, 35, 42)
    with pytest.raises(TexnetsError, match="cannot be downsampled x4 exactly"):
        low_resolution(images, 4)
    assert crop_to_multiple(images, 4).shape == (1, 3, 32, 40)


def test_the_bicubic_baseline_enlarges_by_the_factor_within_the_pixel_range():
    from texnets.degradation import bicubic_upscale
    edges = torch.zeros(1, 3, 8, 8)
    edges[..., 4:] = 1.0   # a hard edge: bicubic overshoots it, and the baseline clamps
    upscaled = bicubic_upscale(edges, 4)
    assert upscaled.shape == (1, 3, 32, 32)
    assert upscaled.min() >= 0 and upscaled.max() <= 1
    assert torch.equal(upscaled, torch.nn.functional.interpolate(edges, scale_factor=4, mode="bicubic").clamp(0, 1))
