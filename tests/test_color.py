"""texnets.color: colour preservation (Gatys et al. 2017's luminance-only transfer) keeps the content's
chrominance and the stylised image's luminance, at the content's size."""
import kornia.color

from helpers import photo
from texnets.color import keep_content_colors, luminance


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
