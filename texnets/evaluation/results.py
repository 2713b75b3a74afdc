"""What an evaluation returns: one labelled figure (``MetricResult``), the whole pass (``Evaluation``), and the
constant-memory running statistics behind each figure.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass
class MetricResult:
    """One figure, with everything a reader needs to judge it."""

    name: str                  # label, e.g. "FID-VGG19(pool5)" or "Gram distance relu3_1"
    metric: str                # fid, kid, sifid, lpips, diversity, psnr, ssim, or gram/meanvar/sw (style)
    value: float | None        # mean over images (or pairs); None when not finite (e.g. PSNR of identical images)
    std: float | None          # sample standard deviation over images, where that means something
    count: int                 # images (or pairs) behind the value
    images: str                # what was compared, e.g. "64 generated vs 1 exemplar"
    extractor: str             # the network and layer the features came from
    note: str = ""
    layer: str | None = None   # style distances: the VGG layer

    def as_dict(self) -> dict:
        return asdict(self)


class RunningStat:
    """Count, mean and sample deviation of a stream of numbers in constant memory (Welford's update).

    Hand-written because torchmetrics' MeanMetric has no deviation, and keeping every value would
    grow with the number of images."""

    def __init__(self):
        self.count, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, values) -> None:
        values = values.flatten().tolist() if isinstance(values, torch.Tensor) else [float(values)]
        for value in values:
            self.count += 1
            delta = value - self.mean
            self.mean += delta / self.count
            self._m2 += delta * (value - self.mean)

    @property
    def std(self) -> float | None:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 and math.isfinite(self._m2) else None


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class Evaluation:
    results: list[MetricResult]
    skipped: dict[str, str]          # metric -> why it was not computed
    generated: int
    reference: str                   # e.g. "1 exemplar", "50 reference images"
    reference_mode: str
    extractors: dict[str, str]       # metric -> extractor description
    fallbacks: dict[str, str]        # metric -> why its standard extractor was not used
    seconds: float

    def as_dict(self) -> dict:
        return {"generated_count": self.generated, "reference": self.reference, "reference_mode": self.reference_mode,
                "metrics": {r.name: r.as_dict() for r in self.results}, "skipped": self.skipped,
                "extractors": self.extractors, "fallbacks": self.fallbacks, "seconds": round(self.seconds, 3)}

    def by_metric(self, metric: str) -> list[MetricResult]:
        return [r for r in self.results if r.metric == metric]
