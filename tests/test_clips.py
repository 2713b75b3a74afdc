"""texnets.clips: synthetic clips whose known motion is the motion of their frames."""
import pytest
import torch

from texnets.clips import MOTIONS, camera_noise, make_clip
from texnets.errors import TexnetsError
from texnets.images import load_image
from texnets.temporal import warping_error

PHOTO = load_image("builtin:astronaut")[0]


@pytest.mark.parametrize("motion", MOTIONS)
def test_the_clip_motion_matches_its_warp(motion):
    clip = make_clip(PHOTO, frames=5, size=(48, 64), motion=motion, speed=2.0, noise=0.0)
    assert clip.frames.shape == (5, 3, 48, 64) and clip.backward.shape == (4, 2, 48, 64)
    assert clip.visible.shape == (4, 1, 48, 64) and float(clip.visible.mean()) > 0.9
    along = warping_error(clip.clean[:-1], clip.clean[1:], clip.backward, clip.visible)
    still = warping_error(clip.clean[:-1], clip.clean[1:], torch.zeros_like(clip.backward))
    # Along the known motion only resampling differs: 0 for the whole-pixel pan, 2.7-3.4 on 0..255 for zoom and
    # rotation at this small size (measured); without the motion the frames differ 6-7x more.
    assert float(along.max()) < 6.0, along
    assert float(along.mean()) < 0.4 * float(still.mean()), (along, still)


def test_the_known_motion_has_the_requested_speed():
    pan = make_clip(PHOTO, frames=3, size=(32, 48), motion="pan", speed=2.0, noise=0.0)
    # The window moves right and down, so what frame t+1 shows at p was at p + (2, 1) in frame t.
    assert torch.allclose(pan.backward[:, 0], torch.full_like(pan.backward[:, 0], 2.0), atol=1e-4)
    assert torch.allclose(pan.backward[:, 1], torch.full_like(pan.backward[:, 1], 1.0), atol=1e-4)
    zoom = make_clip(PHOTO, frames=3, size=(32, 48), motion="zoom", speed=2.0, noise=0.0)
    edge = zoom.backward[0, 0, :, [0, -1]].abs().mean()
    assert float(edge) == pytest.approx(2.0 * 47 / 48, rel=0.05)  # the side edges move by about speed pixels
    assert float(zoom.backward[0, :, 15:17, 23:25].abs().max()) < 0.1  # the centre stays


def test_noise_is_fresh_per_frame_light_and_8_bit():
    clip = make_clip(PHOTO, frames=3, size=(32, 32), motion="pan", speed=0.0, noise=0.01, seed=3)
    assert torch.equal(clip.clean[0], clip.clean[1])  # no motion: the same clean frame
    assert not torch.equal(clip.frames[0], clip.frames[1])
    assert 0.003 < float((clip.frames - clip.clean).std()) < 0.02
    assert torch.equal(clip.frames, (clip.frames * 255).round() / 255)
    again = make_clip(PHOTO, frames=3, size=(32, 32), motion="pan", speed=0.0, noise=0.01, seed=3)
    assert torch.equal(clip.frames, again.frames)
    assert torch.equal(camera_noise(clip.clean, 0.0), (clip.clean * 255).round() / 255)


@pytest.mark.parametrize("options, message", [
    ({"motion": "shake"}, "motion must be one of"),
    ({"frames": 1}, "at least 2 frames"),
    ({"motion": "zoom", "speed": 40.0}, "would close"),
])
def test_bad_clip_options_are_one_line(options, message):
    with pytest.raises(TexnetsError, match=message):
        make_clip(PHOTO, **{"size": (32, 48), **options})
