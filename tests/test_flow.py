"""texnets.flow: DIS flow recovers a known motion in texnets' convention; RAFT without cached weights and a
missing OpenCV are one line each."""
import builtins

import pytest
import torch

from texnets.clips import make_clip
from texnets.errors import TexnetsError
from texnets.flow import DISFlow, RAFTFlow, flow_estimator
from texnets.images import load_image

cv2 = pytest.importorskip("cv2", reason="DIS flow needs opencv-python-headless (requirements.txt installs it)")


@pytest.mark.parametrize("motion", ["pan", "zoom"])
def test_dis_recovers_the_known_backward_flow(motion):
    clip = make_clip(load_image("builtin:astronaut")[0], frames=3, size=(64, 96), motion=motion, speed=2.0, noise=0.0)
    estimate = DISFlow()
    flow = estimate(clip.clean[1:], clip.clean[:-1])
    assert flow.shape == clip.backward.shape and flow.dtype == torch.float32
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # away from the borders
    error = (flow - clip.backward)[inner].norm(dim=1)
    assert float(error.median()) < 0.5, float(error.median())  # measured 0.03 (pan), 0.11 (zoom); ~4 if sign-flipped
    assert "DIS" in estimate.label


def test_raft_without_cached_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(TexnetsError, match="not in the torch hub cache.*--flow dis"):
        RAFTFlow()


def test_missing_opencv_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(TexnetsError, match=r'texnets\[video\]'):
        flow_estimator("dis")


def test_frames_too_small_for_flow_are_one_line():
    with pytest.raises(TexnetsError, match="at least 16 pixels"):
        DISFlow()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_an_unknown_method_is_one_line():
    with pytest.raises(TexnetsError, match="--flow must be one of"):
        flow_estimator("farneback")
