"""texnets.temporal: warping, the warping error (0 for a static scene, the known value for an exact shift), the
forward-backward consistency mask, the flow-free training penalty (it falls when trained against) and the
motion-compensated blend (it lowers a flickering clip's warping error)."""
import statistics

import pytest
import torch

from texnets.clips import make_clip
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet
from texnets.images import load_image
from texnets.temporal import (Perturbation, TemporalBlender, consistency_mask, match_local_contrast, perturb,
                              perturbation_penalty, random_flow, warp, warping_error)


def shifted_pair(shift: int = 3, size: int = 48):
    """Two frames of a built-in photo, the second moved right by ``shift`` pixels, and its exact backward flow."""
    photo = load_image("builtin:astronaut", (size + 2 * shift, size + 2 * shift))
    before = photo[..., shift:shift + size, shift:shift + size]
    after = photo[..., shift:shift + size, :size]  # after(p) = before(p - shift)
    backward = torch.zeros(1, 2, size, size)
    backward[:, 0] = -shift
    return before, after, backward


def test_warp_with_zero_flow_is_the_identity_and_the_mask_is_full():
    image = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    warped, inside = warp(image, torch.zeros(2, 2, 20, 24))
    # grid_sample's coordinate round trip: up to ~2e-6 on [0, 1] pixels (seen over 300 random images), not exactly 0
    assert torch.allclose(warped, image, atol=1e-5)
    assert inside.shape == (2, 1, 20, 24) and bool(inside.all())


def test_warp_by_whole_pixels_moves_the_image_and_masks_what_left_the_frame():
    before, after, backward = shifted_pair(shift=3)
    warped, inside = warp(before, backward)
    assert torch.allclose(warped[..., 3:], after[..., 3:], atol=1e-5)
    assert not inside[..., :3].any() and inside[..., 3:].all()


def test_warping_error_is_zero_for_a_static_scene():
    frames = load_image("builtin:coffee", (32, 40)).expand(3, -1, -1, -1)
    error = warping_error(frames[:-1], frames[1:], torch.zeros(2, 2, 32, 40))
    assert error.shape == (2,) and float(error.abs().max()) < 1e-4


def test_warping_error_equals_the_known_value_for_an_exact_shift():
    before, after, backward = shifted_pair(shift=2)
    assert float(warping_error(before, after, backward)) < 1e-3
    # A constant offset of 10/255 on every visible pixel is a warping error of exactly 10 (on 0..255)...
    assert float(warping_error(before, after + 10 / 255, backward)) == pytest.approx(10.0, abs=1e-3)
    # ... and Lai et al.'s squared form is (10/255)^2.
    squared = warping_error(before, after + 10 / 255, backward, squared=True)
    assert float(squared) == pytest.approx((10 / 255) ** 2, rel=1e-3)
    # Without the motion the same pair differs a lot: the error measures flicker, not motion.
    assert float(warping_error(before, after, torch.zeros_like(backward))) > 10


def test_consistency_mask_keeps_consistent_motion_and_drops_contradictions():
    backward = torch.full((1, 2, 16, 16), 0.0)
    backward[:, 0] = -2
    mask = consistency_mask(backward, -backward)
    assert not mask[..., :2].any() and mask[..., 2:].all()  # the two left columns came from outside frame t
    assert not consistency_mask(backward, backward).any()  # the forward flow goes the same way: no return


def test_random_flow_respects_the_shift_bound_and_a_seed():
    flow = random_flow(3, 32, 40, shift=2.0, motion=0.0, motion_scale=16, generator=torch.Generator().manual_seed(0))
    assert flow.shape == (3, 2, 32, 40) and float(flow.abs().max()) <= 2.0
    assert torch.equal(flow[:, :, :1, :1].expand_as(flow), flow)  # a pure shift is the same everywhere
    again = random_flow(3, 32, 40, 2.0, 0.0, 16, torch.Generator().manual_seed(0))
    assert torch.equal(flow, again)
    smooth = random_flow(1, 64, 64, 0.0, 1.0, 32, torch.Generator().manual_seed(0))
    assert float(smooth.std()) > 0.1 and float((smooth[..., 1:] - smooth[..., :-1]).abs().max()) < 0.5


@pytest.mark.parametrize("mode", ["noise", "warp", "compound"])
def test_perturb_changes_the_photos_as_its_mode_says(mode):
    photos = load_image("builtin:astronaut", (32, 32)).expand(2, -1, -1, -1)
    moved, flow, inside = perturb(photos, Perturbation(mode=mode, noise=0.02, shift=2, motion=0.5),
                                  torch.Generator().manual_seed(0))
    assert moved.shape == photos.shape and float(moved.min()) >= 0 and float(moved.max()) <= 1
    assert (flow is None) == (mode == "noise") and (inside is None) == (mode == "noise")
    assert float((moved - photos).abs().mean()) > 1e-3


def test_bad_perturbation_options_are_one_line():
    with pytest.raises(TexnetsError, match="temporal.mode"):
        Perturbation(mode="flow")
    with pytest.raises(TexnetsError, match=">= 0"):
        Perturbation(noise=-1)


def test_the_penalty_is_zero_for_a_network_that_commutes_with_the_motion():
    photos = load_image("builtin:coffee", (32, 32)).expand(2, -1, -1, -1)
    perturbation = Perturbation(mode="warp", shift=2.0, motion=0.0)
    penalty = perturbation_penalty(lambda x: x * 0.5, photos, photos * 0.5, perturbation,
                                   torch.Generator().manual_seed(0))
    assert float(penalty) < 1e-5
    noisy = perturbation_penalty(lambda x: x + 0.1 * torch.randn_like(x), photos, photos, perturbation,
                                 torch.Generator().manual_seed(0))
    assert float(noisy) > 0.05


def test_training_against_the_penalty_lowers_it_on_a_fixed_batch():
    torch.manual_seed(0)
    network = TransformerNet(width=0.25)
    photos = torch.cat([load_image(f"builtin:{name}", (32, 32)) for name in ("astronaut", "coffee")])
    perturbation = Perturbation(mode="compound", noise=0.02, shift=2.0, motion=0.5)

    def penalty(seed: int) -> torch.Tensor:
        return perturbation_penalty(network, photos, network(photos), perturbation, torch.Generator().manual_seed(seed))

    with torch.no_grad():
        before = statistics.mean(float(penalty(seed)) for seed in range(100, 104))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    for step in range(15):
        loss = penalty(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = statistics.mean(float(penalty(seed)) for seed in range(100, 104))
    # Measured 0.046x at 1 and 2 threads (the penalty alone: the network learns to smooth); 1.0 if nothing trained.
    assert after < 0.8 * before, (before, after)


def flickering(clip, amount: float = 0.08, seed: int = 0) -> torch.Tensor:
    """A stand-in for a flickering stylisation: each frame gets its own smooth random blotches."""
    generator = torch.Generator().manual_seed(seed)
    blotches = torch.nn.functional.interpolate(torch.randn(len(clip.frames), 3, 6, 8, generator=generator),
                                               size=clip.frames.shape[-2:], mode="bilinear", align_corners=False)
    return (clip.clean + amount * blotches).clamp(0, 1)


def known_motion(clip):
    """An estimator that returns the clip's exact motion: estimate(frame t+1, frame t) is its backward flow,
    estimate(frame t, frame t+1) the opposite (exact for a pan)."""
    frames = [float(frame.sum()) for frame in clip.clean]

    def estimate(a, b):
        first, second = frames.index(float(a.sum())), frames.index(float(b.sum()))
        return clip.backward[second:second + 1] if first == second + 1 else -clip.backward[first:first + 1]

    return estimate


def test_blending_lowers_the_warping_error_of_a_flickering_clip():
    clip = make_clip(load_image("builtin:astronaut")[0], frames=6, size=(48, 64), motion="pan", speed=2.0, noise=0.0)
    stylised = flickering(clip)
    blender = TemporalBlender(known_motion(clip), strength=0.6)
    blended = torch.cat([blender(clip.clean[:3], stylised[:3]), blender(clip.clean[3:], stylised[3:])])  # 2 batches
    plain_error = warping_error(stylised[:-1], stylised[1:], clip.backward, clip.visible).mean()
    blended_error = warping_error(blended[:-1], blended[1:], clip.backward, clip.visible).mean()
    assert torch.equal(blended[0], stylised[0])  # nothing to blend the first frame with
    # Measured 0.35-0.37x on three seeds, at 1 and 2 threads.
    assert float(blended_error) < 0.6 * float(plain_error), (plain_error, blended_error)
    assert blender.summary()["blended_frames"] == 5 and blender.summary()["reliable_pixels"] > 0.8


def test_blend_strength_zero_changes_nothing_and_bad_strengths_are_one_line():
    frames = torch.rand(3, 3, 16, 16)
    assert torch.equal(TemporalBlender(lambda a, b: torch.zeros(1, 2, 16, 16), 0.0)(frames, frames * 0.5), frames * 0.5)
    for strength in (-0.1, 1.0):
        with pytest.raises(TexnetsError, match="temporal-strength"):
            TemporalBlender(lambda a, b: None, strength)


def local_spread(images: torch.Tensor) -> float:
    """Mean local standard deviation over 5x5 windows (the stroke contrast a style loss sees)."""
    mean = torch.nn.functional.avg_pool2d(images, 5, 1, 2, count_include_pad=False)
    return float((torch.nn.functional.avg_pool2d((images - mean) ** 2, 5, 1, 2, count_include_pad=False)).sqrt().mean())


def test_matching_local_contrast_restores_what_averaging_flattens():
    generator = torch.Generator().manual_seed(0)
    first, second = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)
    average = (first + second) / 2  # two independent patterns: about 0.7x the contrast
    assert local_spread(average) < 0.8 * local_spread(first)
    restored = match_local_contrast(average, first)
    assert local_spread(restored) == pytest.approx(local_spread(first), rel=0.15)
    assert torch.allclose(match_local_contrast(first, first), first, atol=1e-4)  # nothing to restore


def test_blending_keeps_the_stroke_contrast_unless_told_not_to():
    clip = make_clip(load_image("builtin:astronaut")[0], frames=6, size=(48, 64), motion="pan", speed=2.0, noise=0.0)
    # Strokes that change every frame: fine independent patterns, which averaging flattens.
    strokes = torch.randn(clip.frames.shape, generator=torch.Generator().manual_seed(0))
    stylised = (clip.clean + 0.15 * strokes).clamp(0, 1)
    kept = TemporalBlender(known_motion(clip), strength=0.6)(clip.clean, stylised)
    linear_blender = TemporalBlender(known_motion(clip), strength=0.6, keep_contrast=False)
    linear = linear_blender(clip.clean, stylised)
    assert local_spread(linear[3:]) < local_spread(kept[3:]) <= 1.1 * local_spread(stylised[3:])
    assert linear_blender.summary()["keep_contrast"] is False
