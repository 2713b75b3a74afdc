"""AdaIN and WCT as functions: their output statistics, masks, style interpolation and α."""
import pytest
import torch

from texnets.errors import TexnetsError
from texnets.feature_transforms import FeatureStatistics, adain, check_blend, combine, mean_std, region_weights, wct


def features(seed: int, channels: int = 8, size: int = 16, shift: float = 0.0, batch: int = 1) -> torch.Tensor:
    """Correlated random features: a random mixing of white noise, so the covariance is far from diagonal."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(channels, channels, generator=generator)
    white = torch.randn(batch, channels, size * size, generator=generator)
    return (mixing @ white).view(batch, channels, size, size) + shift


def covariance(x: torch.Tensor) -> torch.Tensor:
    flat = x.double().flatten(2)[0]
    centred = flat - flat.mean(1, keepdim=True)
    return centred @ centred.T / (flat.shape[1] - 1)


def test_adain_output_has_the_style_mean_and_std():
    content, style = features(0), features(1, shift=3.0) * 2
    out = adain(content, FeatureStatistics.of(style))
    out_mean, out_std = mean_std(out)
    style_mean, style_std = mean_std(style)
    assert torch.allclose(out_mean, style_mean, atol=1e-4)
    assert torch.allclose(out_std, style_std, rtol=1e-3)
    assert not torch.allclose(mean_std(content)[1], style_std, rtol=0.1)  # it had to change something


def test_wct_output_covariance_equals_the_style_covariance():
    content, style = features(0), features(1, shift=-2.0) * 3
    out = wct(content, FeatureStatistics.of(style, wct=True))
    assert torch.allclose(covariance(out), covariance(style), rtol=1e-4, atol=1e-4 * covariance(style).abs().max())
    assert torch.allclose(out.double().flatten(2).mean(2), style.double().flatten(2).mean(2), atol=1e-5)
    # AdaIN matches only the diagonal: its covariance differs from the style's off the diagonal
    off = ~torch.eye(8, dtype=torch.bool)
    adain_cov = covariance(adain(content, FeatureStatistics.of(style)))
    assert (adain_cov - covariance(style))[off].abs().max() > 10 * (covariance(out) - covariance(style))[off].abs().max()


def test_wct_survives_rank_deficient_features():
    # 16 channels from 4 independent directions: the covariance has 12 zero eigenvalues
    generator = torch.Generator().manual_seed(0)
    low_rank = (torch.randn(16, 4, generator=generator) @ torch.randn(1, 4, 64, generator=generator)).view(1, 16, 8, 8)
    out = wct(low_rank, FeatureStatistics.of(features(2, channels=16, size=8), wct=True))
    assert torch.isfinite(out).all() and out.abs().max() < 1e3


def test_masked_statistics_are_the_region_statistics():
    content = features(0)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :, :8] = 1
    mean, std = mean_std(content, mask)
    left = content[..., :, :8]
    assert torch.allclose(mean, left.mean((2, 3), keepdim=True), atol=1e-5)
    assert torch.allclose(std, (left.var((2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt(), rtol=1e-4)


def test_alpha_zero_returns_the_content_and_one_hot_weights_equal_one_style():
    content, first, second = features(0), features(1, shift=2.0), features(2, shift=-1.0)
    styles = [FeatureStatistics.of(first, wct=True), FeatureStatistics.of(second, wct=True)]
    for transform in (adain, wct):
        assert torch.equal(combine(content, transform, styles, [0.5, 0.5], alpha=0.0), content)
        alone = combine(content, transform, styles[:1])
        assert torch.allclose(combine(content, transform, styles, [1.0, 0.0]), alone, atol=1e-5)
        half = combine(content, transform, styles[:1], alpha=0.5)
        assert torch.allclose(half, 0.5 * alone + 0.5 * content, atol=1e-5)


def test_masks_give_each_region_its_own_style_and_leave_uncovered_pixels_alone():
    content = features(0, size=16)
    styles = [FeatureStatistics.of(features(1, shift=5.0)), FeatureStatistics.of(features(2, shift=-5.0))]
    left, right = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    left[..., :8], right[..., 8:12] = 1, 1  # columns 12.. are covered by no mask
    out = combine(content, adain, styles, masks=[left, right])
    assert out[..., :8].mean() > 4 and out[..., 8:12].mean() < -4
    assert torch.equal(out[..., 12:], content[..., 12:])
    shares = region_weights(2, (16, 16), [0.5, 0.5], [left, right])
    assert torch.allclose(shares[0] + shares[1], (left + right).clamp(max=1))


@pytest.mark.parametrize("count, weights, masks, alpha, message", [
    (2, [1.0], None, 1.0, "1 style weights given for 2 style images"),
    (1, None, None, 1.5, "alpha must be in [0, 1]"),
    (2, [1.0, -1.0], None, 1.0, "non-negative"),
    (2, None, [torch.ones(1, 1, 4, 4)], 1.0, "one mask per style"),
])
def test_bad_blends_are_one_line(count, weights, masks, alpha, message):
    with pytest.raises(TexnetsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_blend(count, weights, masks, alpha)
    assert check_blend(2, [1, 3], None, 0.5) == [0.25, 0.75]
