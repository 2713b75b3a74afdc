"""Multi-scale noise (texnets.noise): hashed noise is deterministic, any window of it (one crossing the
border included) agrees with the whole field and wraps around, its values are uniform in [0, 1), and
another seed gives other noise."""
import torch

from texnets.noise import NoiseSpec


def test_hashed_noise_windows_agree_with_the_whole_field():
    spec = NoiseSpec(scales=3, channels=3)
    whole = spec.hashed(7, (32, 48), samples=[0, 1])
    assert 0.45 < whole[0].mean() < 0.55 and whole[0].min() >= 0 and whole[0].max() < 1
    window = spec.hashed(7, (32, 48), samples=[1], window=[(16, 48), (-8, 24)])  # crosses the bottom/left border
    assert torch.equal(window[0][0, :, :16, 8:], whole[0][1, :, 16:32, 0:24])
    assert torch.equal(window[0][0, :, :16, :8], whole[0][1, :, 16:32, 40:48])  # wrapped around
    assert torch.equal(window[2][0, :, :4, 2:], whole[2][1, :, 4:8, 0:6])
    assert not torch.equal(spec.hashed(8, (32, 48))[0], whole[0][:1])
