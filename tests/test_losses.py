"""The loss family: zero on identical inputs, positive and differentiable otherwise, the invariances each
statistic has, tiny hand-computed cases, layer weights, buffers/checkpoints, the criterion."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.losses import (STYLE_LOSSES, ContentLoss, GramLoss, MeanVarLoss, MMDLoss, MomentLoss,
                            PerceptualCriterion, PerStyleLoss, SlicedWassersteinLoss, TotalVariation, gram_matrix,
                            make_style_loss, resolve_layer_weights)

LAYERS = ["relu1_1", "relu2_1"]
ALL_LOSSES = sorted(STYLE_LOSSES) + ["content"]
# Statistics of the distribution of feature vectors, blind to where each vector sits.
PERMUTATION_INVARIANT = ["gram", "meanvar", "moments", "mmd", "sw"]


def make_loss(name: str, target=None, **options):
    if name == "content":
        return ContentLoss(LAYERS, target=target, **options)
    return make_style_loss(name, LAYERS, target=target, **options)


def synthetic_features(seed: int = 0, batch: int = 1, sizes=(6, 3)) -> dict[str, torch.Tensor]:
    """ReLU-like (non-negative) small feature maps: 8 and 16 channels, at most 36 positions."""
    g = torch.Generator().manual_seed(seed)
    return {"relu1_1": torch.rand(batch, 8, sizes[0], sizes[0], generator=g) * 2,
            "relu2_1": torch.rand(batch, 16, sizes[1], sizes[1], generator=g).pow(2) * 3}


def permute_positions(features: torch.Tensor, seed: int = 0) -> torch.Tensor:
    n, c, h, w = features.shape
    perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))
    return features.flatten(2)[:, :, perm].reshape(n, c, h, w)


def call(loss, features, seed: int = 123):
    torch.manual_seed(seed)  # SW draws its projections from the global generator, MMD its subsample
    return loss(features)


# --------------------------------------------------------------------------------------------------
# Zero, positive, differentiable

@pytest.mark.parametrize("name", ALL_LOSSES)
def test_zero_for_identical_inputs(name):
    features = synthetic_features()
    loss = make_loss(name, target=features)
    value = call(loss, {k: v.clone() for k, v in features.items()})
    assert value.ndim == 0
    assert abs(value.item()) < 1e-6, value.item()
    assert set(loss.last_layer_losses) == set(LAYERS)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_positive_and_differentiable_otherwise(name):
    loss = make_loss(name, target=synthetic_features(0))
    other = {k: v.clone().requires_grad_(True) for k, v in synthetic_features(1).items()}
    value = call(loss, {k: (v * 1.5 + 0.2) for k, v in other.items()})
    assert value.item() > 1e-4
    value.backward()
    for layer, tensor in other.items():
        assert tensor.grad is not None, layer
        assert torch.isfinite(tensor.grad).all(), layer
        assert tensor.grad.abs().sum() > 0, layer
    # The buffers are constants: no gradient reaches them.
    assert all(not buffer.requires_grad for buffer in loss.buffers())


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_gradient_descent_lowers_the_loss(name):
    loss = make_loss(name, target=synthetic_features(0))
    x = {k: v.clone().requires_grad_(True) for k, v in synthetic_features(1).items()}
    before = call(loss, x)
    before.backward()
    with torch.no_grad():
        step = {k: v - 1e-2 * v.grad / v.grad.norm() for k, v in x.items()}
    after = call(loss, step)
    assert after.item() < before.item()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_batched_input(name):
    loss = make_loss(name, target=synthetic_features(0))
    batch = synthetic_features(1, batch=3)
    value = call(loss, batch)
    assert value.ndim == 0 and torch.isfinite(value) and value.item() > 0


@pytest.mark.parametrize("name", PERMUTATION_INVARIANT)
def test_invariant_to_spatial_permutation(name):
    loss = make_loss(name, target=synthetic_features(0))
    x = synthetic_features(1)
    shuffled = {k: permute_positions(v, seed=7) for k, v in x.items()}
    assert not torch.equal(shuffled["relu1_1"], x["relu1_1"])
    a, b = call(loss, x), call(loss, shuffled)
    assert a.item() > 1e-4
    assert math.isclose(a.item(), b.item(), rel_tol=1e-4, abs_tol=1e-7)


@pytest.mark.parametrize("name", ["gram", "meanvar", "moments", "sw"])
def test_shift_invariant_for_circular_shifts(name):
    loss = make_loss(name, target=synthetic_features(0))
    x = synthetic_features(1)
    rolled = {k: torch.roll(v, shifts=(1, 2), dims=(2, 3)) for k, v in x.items()}
    assert math.isclose(call(loss, x).item(), call(loss, rolled).item(), rel_tol=1e-4)


def test_content_loss_is_not_permutation_invariant():
    features = synthetic_features(0)
    loss = ContentLoss(LAYERS, target=features)
    shuffled = {k: permute_positions(v) for k, v in features.items()}
    assert loss(shuffled).item() > 1e-3


def test_sliced_wasserstein_handles_size_mismatch():
    g = torch.Generator().manual_seed(0)
    exemplar = {"relu1_1": torch.randn(1, 8, 16, 16, generator=g)}
    loss = SlicedWassersteinLoss(["relu1_1"], target=exemplar)
    same_distribution = {"relu1_1": torch.randn(1, 8, 24, 24, generator=g, requires_grad=True)}
    other_distribution = {"relu1_1": 3 + 2 * torch.randn(1, 8, 10, 10, generator=g)}
    near, far = call(loss, same_distribution), call(loss, other_distribution)
    assert torch.isfinite(near) and torch.isfinite(far)
    assert near.item() < 0.1 * far.item()
    near.backward()
    assert torch.isfinite(same_distribution["relu1_1"].grad).all()
    # Constant feature maps of the same value but different sizes have identical distributions.
    constant = SlicedWassersteinLoss(["relu1_1"], target={"relu1_1": torch.full((1, 4, 8, 8), 0.7)})
    assert call(constant, {"relu1_1": torch.full((2, 4, 3, 5), 0.7)}).item() < 1e-10


def test_sliced_wasserstein_redraws_projections():
    loss = SlicedWassersteinLoss(["relu1_1"], target={"relu1_1": torch.rand(1, 8, 6, 6)})
    x = {"relu1_1": torch.rand(1, 8, 6, 6)}
    values = {round(loss(x).item(), 7) for _ in range(4)}
    assert len(values) > 1
    assert call(loss, x, seed=5).item() == call(loss, x, seed=5).item()


def test_sliced_wasserstein_projection_count():
    g = torch.Generator().manual_seed(0)
    target = {"relu1_1": torch.rand(1, 8, 6, 6, generator=g)}
    x = {"relu1_1": torch.rand(1, 8, 6, 6, generator=g) ** 2}

    def values(projections):
        loss = SlicedWassersteinLoss(["relu1_1"], target=target, projections=projections)
        return torch.tensor([call(loss, x, seed=seed).item() for seed in range(40)])

    # Each call averages over its random directions, so the spread across redraws (coefficient of variation)
    # falls like 1/sqrt(count): 64 projections give 0.10-0.16x the spread of one on several data seeds, and
    # exactly 1x if the count were ignored.
    one, many = values(1), values(64)
    assert (one > 0).all() and (many > 0).all()
    spread_one, spread_many = float(one.std() / one.mean()), float(many.std() / many.mean())
    assert spread_many < 0.4 * spread_one, (spread_many, spread_one)
    # The default is one direction per channel: the same draws as asking for 8 explicitly.
    assert torch.equal(values(None), values(8))


def test_mmd_subsamples_large_maps():
    g = torch.Generator().manual_seed(0)
    target = {"relu1_1": torch.rand(1, 4, 10, 10, generator=g)}
    loss = MMDLoss(["relu1_1"], target=target, samples=20)
    assert loss.target("relu1_1", "samples").shape == (1, 20, 4)
    # With subsampling an identical input is only close to zero, far below a different distribution.
    same = call(loss, target).item()
    different = call(loss, {"relu1_1": target["relu1_1"] + 1.0}).item()
    assert same < 0.2 * different


@pytest.mark.parametrize("kernel", ["gaussian", "poly", "linear"])
def test_mmd_kernels(kernel):
    features = synthetic_features()
    loss = MMDLoss(LAYERS, target=features, kernel=kernel)
    assert abs(loss(features).item()) < 1e-5
    assert loss({k: v + 0.5 for k, v in features.items()}).item() > 1e-4


def test_mmd_linear_kernel_is_mean_matching():
    """k(a, b) = aᵀb / C makes MMD² = ‖mean_x - mean_y‖² / C."""
    g = torch.Generator().manual_seed(0)
    y, x = torch.rand(1, 4, 3, 3, generator=g), torch.rand(1, 4, 3, 3, generator=g)
    loss = MMDLoss(["relu1_1"], target={"relu1_1": y}, kernel="linear")
    expected = (x.mean((2, 3)) - y.mean((2, 3))).pow(2).sum() / 4
    assert math.isclose(loss({"relu1_1": x}).item(), expected.item(), rel_tol=1e-4)


def test_bad_options():
    with pytest.raises(TexnetsError, match="kernel"):
        MMDLoss(LAYERS, kernel="laplace")
    with pytest.raises(TexnetsError, match="normalisation"):
        GramLoss(LAYERS, normalize="c")
    with pytest.raises(TexnetsError, match="order"):
        MomentLoss(LAYERS, order=0)
    with pytest.raises(TexnetsError, match="at least one layer"):
        GramLoss([])
    with pytest.raises(TexnetsError, match="bad option.*gram"):
        make_style_loss("gram", LAYERS, kernel="gaussian")


# --------------------------------------------------------------------------------------------------
# Hand-computed cases

def test_gram_by_hand():
    # C=2, H=1, W=2: F = [[1, 2], [3, 4]], F Fᵀ = [[5, 11], [11, 25]].
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert x.shape == (1, 2, 1, 2)
    torch.testing.assert_close(gram_matrix(x, "hw"), torch.tensor([[[2.5, 5.5], [5.5, 12.5]]]))
    torch.testing.assert_close(gram_matrix(x, "chw"), torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))
    zero = {"relu1_1": torch.zeros_like(x)}
    # Against an all-zero target the loss is the mean of the squared Gram entries.
    hw = GramLoss(["relu1_1"], target=zero, normalize="hw")({"relu1_1": x})
    chw = GramLoss(["relu1_1"], target=zero, normalize="chw")({"relu1_1": x})
    assert math.isclose(hw.item(), (2.5**2 + 2 * 5.5**2 + 12.5**2) / 4)
    assert math.isclose(chw.item(), (1.25**2 + 2 * 2.75**2 + 6.25**2) / 4)
    assert math.isclose(hw.item(), 4 * chw.item())  # C² between the two normalisations


def test_gram_default_normalisation_is_chw():
    x = torch.rand(1, 3, 4, 5)
    torch.testing.assert_close(gram_matrix(x), gram_matrix(x, "chw"))
    assert GramLoss(["relu1_1"]).normalize == "chw"
    with pytest.raises(TexnetsError):
        gram_matrix(x, "bogus")


def test_gram_target_averages_several_exemplars():
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    loss = GramLoss(["relu1_1"], target={"relu1_1": torch.cat([a, b])})
    expected = (gram_matrix(a) + gram_matrix(b)) / 2
    torch.testing.assert_close(loss.target("relu1_1", "gram"), expected)


def test_meanvar_constant_channels():
    target = torch.stack([torch.full((3, 3), 2.0), torch.full((3, 3), -1.0)]).unsqueeze(0)
    loss = MeanVarLoss(["relu1_1"], target={"relu1_1": target})
    x = torch.stack([torch.full((3, 3), 5.0), torch.full((3, 3), -1.0)]).unsqueeze(0)
    # Means differ by (3, 0); both standard deviations are sqrt(eps).
    assert math.isclose(loss({"relu1_1": x}).item(), 9 / 2, rel_tol=1e-5)
    # Same means, channel 0 alternates 1, 3 (std 1) against a constant 2 (std 0).
    alternating = torch.tensor([1.0, 3.0]).repeat(8).view(1, 1, 4, 4)
    x = torch.cat([alternating, torch.full((1, 1, 4, 4), -1.0)], 1)
    eps = MeanVarLoss.eps
    expected = (math.sqrt(1 + eps) - math.sqrt(eps)) ** 2 / 2
    assert math.isclose(loss({"relu1_1": x}).item(), expected, rel_tol=1e-4)


def test_moments_order1_psi_weighting():
    # One channel, target mean 2: ψ = min(1, 1/2) = 0.5 and the target statistic is ψ·2 = 1.
    loss = MomentLoss(["relu1_1"], target={"relu1_1": torch.full((1, 1, 2, 2), 2.0)}, order=1)
    assert math.isclose(loss.target("relu1_1", "psi").item(), 0.5)
    # Input mean 4: ψ·4 = 2, (2 - 1)² = 1.
    assert math.isclose(loss({"relu1_1": torch.full((1, 1, 2, 2), 4.0)}).item(), 1.0, rel_tol=1e-6)
    # A weakly activated exemplar (mean 0.5) is not scaled up: ψ = 1.
    small = MomentLoss(["relu1_1"], target={"relu1_1": torch.full((1, 1, 2, 2), 0.5)}, order=1)
    assert math.isclose(small.target("relu1_1", "psi").item(), 1.0)
    assert math.isclose(small({"relu1_1": torch.full((1, 1, 2, 2), 1.5)}).item(), 1.0, rel_tol=1e-6)


def test_moments_higher_orders_see_skewness():
    # Same mean and variance, opposite skewness: orders 1-2 cannot tell them apart, order 3 can.
    base = torch.tensor([0.0, 0.0, 0.0, 3.0]).view(1, 1, 2, 2) + 1.0
    mirrored = 2 * base.mean() - base
    target = {"relu1_1": base}
    two = MomentLoss(["relu1_1"], target=target, order=2)
    three = MomentLoss(["relu1_1"], target=target, order=3)
    assert two({"relu1_1": mirrored}).item() < 1e-8
    assert three({"relu1_1": mirrored}).item() > 0.1


def test_content_loss_by_hand():
    target = torch.rand(1, 2, 3, 3)
    loss = ContentLoss(["relu1_1"], target={"relu1_1": target})
    assert math.isclose(loss({"relu1_1": target + 2}).item(), 4.0, rel_tol=1e-5)
    # A batch of inputs against one target, and a batch against a batch.
    assert math.isclose(loss({"relu1_1": torch.cat([target + 1, target - 3])}).item(), 5.0, rel_tol=1e-5)


@pytest.mark.parametrize("power, expected", [(1, 0.5 + 0.25), (2, 0.5**2 + 0.25**2)])
def test_total_variation_of_a_ramp(power, expected):
    rows = torch.arange(5.0).view(5, 1) * 0.25
    cols = torch.arange(7.0).view(1, 7) * 0.5
    ramp = (rows + cols).expand(2, 3, 5, 7)
    assert math.isclose(TotalVariation(power)(ramp).item(), expected, rel_tol=1e-6)
    assert TotalVariation(power)(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_total_variation_default_power_and_gradient():
    tv = TotalVariation()
    assert tv.power == 2.0
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    tv(x).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------
# Layer weights

def test_layer_weights_resolution():
    layers = ["relu1_1", "relu3_1"]
    assert resolve_layer_weights(layers) == {"relu1_1": 1.0, "relu3_1": 1.0}
    assert resolve_layer_weights(layers, "inverse_channels") == {"relu1_1": 1 / 64, "relu3_1": 1 / 256}
    assert resolve_layer_weights(layers, {"relu3_1": 2}) == {"relu1_1": 1.0, "relu3_1": 2.0}
    assert resolve_layer_weights(layers, [0.5, 3]) == {"relu1_1": 0.5, "relu3_1": 3.0}
    with pytest.raises(TexnetsError, match="3 layer weights given for 2 layers"):
        resolve_layer_weights(layers, [1, 2, 3])
    with pytest.raises(TexnetsError, match="relu5_1"):
        resolve_layer_weights(layers, {"relu5_1": 1.0})
    with pytest.raises(TexnetsError, match="inverse_channel"):
        resolve_layer_weights(layers, "inverse_channel")


@pytest.mark.parametrize("layer_weights", [None, "inverse_channels", {"relu2_1": 5.0}, [0.25, 4.0]])
def test_layer_weights_are_applied(layer_weights):
    loss = GramLoss(LAYERS, layer_weights, target=synthetic_features(0))
    total = loss(synthetic_features(1))
    weights = resolve_layer_weights(LAYERS, layer_weights)
    expected = sum(weights[layer] * loss.last_layer_losses[layer] for layer in LAYERS)
    assert math.isclose(total.item(), expected.item(), rel_tol=1e-6)
    assert all(term.item() > 0 for term in loss.last_layer_losses.values())
    assert all(not term.requires_grad for term in loss.last_layer_losses.values())


def test_make_style_loss_forwards_weights():
    loss = make_style_loss("meanvar", LAYERS, [1.0, 0.0], target=synthetic_features(0))
    x = synthetic_features(1)
    assert math.isclose(loss(x).item(), loss.last_layer_losses["relu1_1"].item(), rel_tol=1e-6)


# --------------------------------------------------------------------------------------------------
# Targets as buffers

@pytest.mark.parametrize("name", sorted(STYLE_LOSSES))
def test_targets_are_checkpointed_and_restored(name, tmp_path):
    loss = make_loss(name, target=synthetic_features(0))
    state = loss.state_dict()
    assert state and all(key.startswith("target_") for key in state)
    assert {key.split("_")[1] + "_" + key.split("_")[2] for key in state} == set(LAYERS)
    path = tmp_path / "loss.pt"
    torch.save(state, path)

    fresh = make_loss(name)
    with pytest.raises(TexnetsError, match="set_target"):
        fresh(synthetic_features(1))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    x = synthetic_features(1)
    assert math.isclose(call(fresh, x).item(), call(loss, x).item(), rel_tol=1e-6)
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value)


def test_targets_restore_inside_a_parent_module():
    parent = nn.ModuleDict({"style": GramLoss(LAYERS, target=synthetic_features(0))})
    fresh = nn.ModuleDict({"style": GramLoss(LAYERS)})
    fresh.load_state_dict(parent.state_dict())
    x = synthetic_features(1)
    assert math.isclose(fresh["style"](x).item(), parent["style"](x).item(), rel_tol=1e-6)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_targets_follow_to(name):
    loss = make_loss(name, target=synthetic_features(0))
    buffers = dict(loss.named_buffers())
    assert buffers and all(value.dtype == torch.float32 for value in buffers.values())
    loss = loss.to(torch.float64)
    assert all(value.dtype == torch.float64 for value in loss.buffers())
    x = {k: v.double() for k, v in synthetic_features(1).items()}
    value = call(loss, x)
    assert value.dtype == torch.float64 and value.item() > 0


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_features_in_another_dtype_than_the_targets(name):
    """Under autocast the features arrive in a lower precision than the float32 targets."""
    loss = make_loss(name, target=synthetic_features(0))
    reference = call(loss, synthetic_features(1)).item()
    value = call(loss, {k: v.double() for k, v in synthetic_features(1).items()})
    assert torch.isfinite(value) and value.item() > 0
    if name != "sw":  # SW's random projections are drawn in the features' dtype: other numbers
        assert math.isclose(value.item(), reference, rel_tol=1e-4)
    identical = call(loss, {k: v.double() for k, v in synthetic_features(0).items()})
    assert abs(identical.item()) < 1e-6


def test_content_targets_are_not_checkpointed():
    loss = ContentLoss(LAYERS, target=synthetic_features(0))
    assert loss.state_dict() == {}
    assert len(list(loss.buffers())) == len(LAYERS)


def test_set_target_checks_layers():
    with pytest.raises(TexnetsError, match="relu2_1"):
        GramLoss(LAYERS, target={"relu1_1": torch.rand(1, 2, 3, 3)})


def test_set_target_replaces_the_target():
    loss = MeanVarLoss(LAYERS, target=synthetic_features(0))
    loss.set_target(synthetic_features(1))
    assert abs(loss(synthetic_features(1)).item()) < 1e-6


# --------------------------------------------------------------------------------------------------
# Registry

def test_style_losses_registry():
    assert set(STYLE_LOSSES) == {"gram", "meanvar", "moments", "mmd", "sw", "mrf"}
    assert isinstance(make_style_loss("Gram", LAYERS), GramLoss)
    assert isinstance(make_style_loss("sw", LAYERS, projections=4), SlicedWassersteinLoss)
    assert make_style_loss("moments", LAYERS, order=3).order == 3


def test_unknown_style_loss():
    with pytest.raises(TexnetsError) as info:
        make_style_loss("grma", LAYERS)
    message = str(info.value)
    assert "'grma'" in message and "gram" in message and "sw" in message


# --------------------------------------------------------------------------------------------------
# The criterion over a real (truncated) encoder

class CountingEncoder(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.calls = encoder, []

    def forward(self, images, layers=None):
        self.calls.append(sorted(layers))
        return self.encoder(images, layers)


@pytest.fixture(scope="module")
def encoder():
    from texnets.vgg import VGGEncoder
    return VGGEncoder(["relu1_1", "relu2_1"])


def test_perceptual_criterion(encoder):
    g = torch.Generator().manual_seed(0)
    style_image, content_image = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        style = GramLoss(["relu1_1", "relu2_1"], target=encoder(style_image))
        content = ContentLoss(["relu2_1"], target=encoder(content_image, ["relu2_1"]))
    counting = CountingEncoder(encoder)
    criterion = PerceptualCriterion(counting, {"style": (style, 10.0), "content": (content, 0.5)},
                                    tv_weight=2.0)
    image = content_image.clone().requires_grad_(True)
    total, logs = criterion(image)
    assert counting.calls == [["relu1_1", "relu2_1"]]
    assert set(logs) == {"style", "style/relu1_1", "style/relu2_1", "content", "content/relu2_1", "tv",
                         "total"}
    assert logs["content"].item() < 1e-8  # initialised from the content image
    assert logs["style"].item() > 0 and logs["tv"].item() > 0
    expected = 10.0 * logs["style"] + 0.5 * logs["content"] + 2.0 * logs["tv"]
    assert math.isclose(total.item(), expected.item(), rel_tol=1e-5)
    assert math.isclose(logs["style"].item(), (logs["style/relu1_1"] + logs["style/relu2_1"]).item(),
                        rel_tol=1e-5)
    assert torch.equal(logs["total"], total.detach())
    assert all(not value.requires_grad for value in logs.values())
    total.backward()
    assert image.grad is not None and image.grad.abs().sum() > 0

    # A second call runs the encoder exactly once more; no TV term when its weight is zero.
    no_tv = PerceptualCriterion(counting, {"style": (style, 1.0)})
    _, logs = no_tv(image.detach())
    assert len(counting.calls) == 2 and "tv" not in logs


def test_perceptual_criterion_zero_at_the_exemplar(encoder):
    exemplar = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        features = encoder(exemplar)
        losses = {name: make_style_loss(name, ["relu1_1", "relu2_1"], target=features)
                  for name in STYLE_LOSSES}
    for name, loss in losses.items():
        criterion = PerceptualCriterion(encoder, {"style": (loss, 1.0)})
        torch.manual_seed(0)
        total, _ = criterion(exemplar)
        assert total.item() < 1e-3 * max(1.0, criterion(torch.rand_like(exemplar))[0].item()), name


def test_criterion_moves_targets_with_to():
    from texnets.vgg import VGGEncoder
    encoder = VGGEncoder(["relu1_1"])  # its own: .to() converts in place
    with torch.no_grad():
        style = GramLoss(["relu1_1"], target=encoder(torch.rand(1, 3, 16, 16)))
    criterion = PerceptualCriterion(encoder, {"style": (style, 1.0)}).to(torch.float64)
    assert style.target("relu1_1", "gram").dtype == torch.float64
    total, _ = criterion(torch.rand(1, 3, 16, 16, dtype=torch.float64))
    assert total.dtype == torch.float64
    assert "terms.style.target_relu1_1_gram" in criterion.state_dict()


# --------------------------------------------------------------------------------------------------
# MRF (Li & Wand 2016)

def test_mrf_is_zero_on_identical_features_and_grows_with_perturbation():
    target = synthetic_features(0, sizes=(8, 5))
    loss = make_style_loss("mrf", LAYERS, target=target)
    assert float(loss(target)) < 1e-10
    g = torch.Generator().manual_seed(1)
    values = [float(loss({k: v + scale * torch.randn(v.shape, generator=g) for k, v in target.items()}))
              for scale in (0.05, 0.3, 1.0)]
    assert 0 < values[0] < values[1] < values[2], values


def test_mrf_matches_each_patch_to_its_nearest_exemplar_patch():
    # The input's patches all come from the exemplar, rearranged: every one has an exact match, so the loss
    # is ~0 even though the maps differ position by position (where a Gram-free content loss would not be).
    exemplar = torch.rand(1, 4, 9, 9, generator=torch.Generator().manual_seed(0))
    shuffled = torch.cat([exemplar[..., 3:, :], exemplar[..., :3, :]], dim=2)[..., :6, :]  # top rows moved
    loss = make_style_loss("mrf", ["relu1_1"], target={"relu1_1": exemplar})
    assert float(loss({"relu1_1": exemplar[..., 3:, :]})) < 1e-10
    assert float(loss({"relu1_1": shuffled})) < float(ContentLoss(["relu1_1"], target={"relu1_1": exemplar[..., :6, :]})(
        {"relu1_1": shuffled}))


def test_mrf_refuses_maps_smaller_than_a_patch():
    loss = make_style_loss("mrf", ["relu1_1"], patch_size=5, target={"relu1_1": torch.rand(1, 4, 8, 8)})
    with pytest.raises(TexnetsError, match="smaller than the 5x5 MRF patch"):
        loss({"relu1_1": torch.rand(1, 4, 4, 8)})


# --------------------------------------------------------------------------------------------------
# Several styles in one batch (Dumoulin et al. 2017)

def test_per_style_loss_judges_each_image_by_its_own_style():
    targets = [synthetic_features(seed) for seed in (1, 2, 3)]
    per_style = PerStyleLoss([GramLoss(LAYERS, target=target) for target in targets])
    images = synthetic_features(seed=9, batch=4)
    per_style.set_assignment(torch.tensor([2, 0, 2, 1]))
    expected = sum(GramLoss(LAYERS, target=targets[style])({k: v[i:i + 1] for k, v in images.items()})
                   for i, style in enumerate([2, 0, 2, 1])) / 4
    assert torch.allclose(per_style(images), expected, rtol=1e-5)
    assert set(per_style.last_layer_losses) == set(LAYERS)
    # A batch of one style is that style's own loss.
    per_style.set_assignment(torch.tensor([1, 1, 1, 1]))
    assert torch.allclose(per_style(images), GramLoss(LAYERS, target=targets[1])(images), rtol=1e-6)


def test_per_style_loss_refuses_unknown_styles_and_a_missing_assignment():
    per_style = PerStyleLoss([GramLoss(LAYERS, target=synthetic_features(seed)) for seed in (1, 2)])
    with pytest.raises(TexnetsError, match="call set_assignment first"):
        per_style(synthetic_features(batch=2))
    with pytest.raises(TexnetsError, match="style indices must be in 0..1"):
        per_style.set_assignment(torch.tensor([0, 2]))
