"""texnets.color: colour preservation (Gatys et al. 2017's luminance-only transfer) keeps the content's
chrominance and the stylised image's luminance, at the content's size; histogram matching (Johnson et al. 2016's
super-resolution post-processing) gives each channel its reference channel's distribution."""
import kornia.color
import pytest
import torch

from helpers import photo
from texnets.color import keep_content_colors, luminance, match_histograms


def test_keep_content_colors_takes_the_chrominance_of_the_content(small_photos):
    content = photo(small_photos[1], (48, 64))
    stylised = photo(small_photos[2], (48, 64))  # another photo stands in for a stylised one
    out = keep_content_colors(stylised, content)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    ycc_out, ycc_content = kornia.color.rgb_to_ycbcr(out), kornia.color.rgb_to_ycbcr(content)
    assert (ycc_out[:, 1:] - ycc_content[:, 1:]).abs().mean() < 0.01
    assert (luminance(out) - luminance(stylised)).abs().mean() < 0.01
    assert (luminance(out) - luminance(content)).abs().mean() > 0.05  # the luminance is the stylised one
    # A stylised image of another size: its luminance is resized to the content's size.
    half = keep_content_colors(stylised[..., ::2, ::2], content)
    assert half.shape == content.shape
    assert (kornia.color.rgb_to_ycbcr(half)[:, 1:] - ycc_content[:, 1:]).abs().mean() < 0.01


def test_histogram_matching_gives_each_channel_its_reference_channels_values(small_photos):
    image = photo(small_photos[0], (32, 40))
    reference = photo(small_photos[1], (32, 40))
    matched = match_histograms(image, reference)
    assert matched.shape == image.shape
    for channel in range(3):   # same size: the reference's values (up to the image's ties), in the image's order
        difference = matched[0, channel].flatten().sort().values - reference[0, channel].flatten().sort().values
        assert difference.abs().mean() < 2e-3 and difference.abs().max() < 0.05
    ranks_before = image[0, 0].flatten().argsort()
    assert (matched[0, 0].flatten()[ranks_before].diff() >= 0).all()   # monotone: the image's order is kept
    assert torch.allclose(match_histograms(image, image), image)


def test_histogram_matching_pairs_images_with_references_of_another_size(small_photos):
    images = torch.cat([photo(small_photos[0], (64, 64)), photo(small_photos[2], (64, 64))])
    references = torch.cat([photo(small_photos[1], (16, 16)), photo(small_photos[3], (16, 16))])
    matched = match_histograms(images, references)   # a x4 output against its low-resolution input
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    for index in range(2):
        for channel in range(3):
            expected = torch.quantile(references[index, channel].flatten(), quantiles)
            assert torch.allclose(torch.quantile(matched[index, channel].flatten(), quantiles), expected, atol=0.02)
    assert (matched[0] - match_histograms(images[:1], references[1:])[0]).abs().max() > 0.05   # its own reference
    with pytest.raises(ValueError, match="pairs images with references"):
        match_histograms(images, references[:1])
