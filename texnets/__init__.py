"""texnets: feed-forward texture and style generators trained against a frozen VGG perceptual loss.

Images inside the package are float tensors, RGB, in [0, 1], shaped (N, 3, H, W).
"""
__version__ = "0.1.0"

from texnets.errors import TexnetsError  # noqa: F401  (re-exported: the one error the CLIs catch)
