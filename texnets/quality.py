"""Image quality against a ground truth (PSNR, SSIM) and the 8-bit rounding that makes it describe a saved
file, light enough for training code: it imports torch alone (torchmetrics inside the call), never the
evaluation stack of ``texnets.evaluation``."""
from __future__ import annotations

import torch


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to 8 bits, so metrics describe exactly what the saved PNG holds."""
    return (image.detach().float().clamp(0, 1) * 255).round() / 255


def psnr_ssim(generated: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of images in [0, 1] (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    psnr = peak_signal_noise_ratio(generated, references, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(generated, references, data_range=1.0, reduction="none")
    return psnr.reshape(-1), ssim.reshape(-1)
