"""texnets.tasks.objectives, the Texture Networks' training terms: gradient normalisation gives each layer a
push of the requested size whatever its loss's scale, and the diversity term (Ulyanov et al. 2017) rewards
samples that spread apart, with finite gradients."""
import pytest
import torch

from texnets.tasks.objectives import diversity_entropy, normalize_gradients


def test_gradient_normalisation_gives_each_layer_a_unit_push():
    a = torch.randn(2, 4, 5, 5, requires_grad=True)
    b = torch.randn(2, 8, 3, 3, requires_grad=True)
    features = normalize_gradients({"a": a, "b": b}, {"b": 0.5})
    loss = 1e6 * features["a"].pow(2).sum() + 1e-3 * features["b"].pow(3).sum()
    loss.backward()
    assert a.grad.abs().sum().item() == pytest.approx(1.0, rel=1e-5)
    assert b.grad.abs().sum().item() == pytest.approx(0.5, rel=1e-5)


def test_diversity_entropy_rewards_spread_and_has_finite_gradients():
    tight = torch.randn(1, 8, 4, 4).repeat(4, 1, 1, 1) + 0.01 * torch.randn(4, 8, 4, 4)
    spread = torch.randn(4, 8, 4, 4, requires_grad=True)
    assert diversity_entropy(spread) > diversity_entropy(tight)
    diversity_entropy(spread).backward()
    assert torch.isfinite(spread.grad).all() and spread.grad.abs().sum() > 0
    assert diversity_entropy(torch.randn(1, 8, 4, 4)) == 0
