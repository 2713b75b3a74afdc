"""texnets.evaluation: each metric behaves as its definition says (zero for identical inputs, growing with
the difference), the offline paths are labelled and explained, and pairing refuses what it cannot match."""
import statistics
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch

from texnets import evaluation
from texnets.errors import TexnetsError
from texnets.images import load_image

SMALL = 32


def crops(name: str, count: int, size: int = SMALL, seed: int = 0) -> torch.Tensor:
    """Random crops of a built-in image: a small set of images from one distribution."""
    image = load_image(f"builtin:{name}", 96)
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        y, x = (int(torch.randint(0, s - size + 1, (1,), generator=rng)) for s in image.shape[-2:])
        out.append(image[0, :, y:y + size, x:x + size])
    return torch.stack(out)


def noisy(images: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=rng)).clamp(0, 1)


@pytest.fixture(scope="module")
def pooled_features():
    return evaluation.PooledVGGFeatures("pool2", size=SMALL)


def set_distances(real_features: torch.Tensor, fake_features: torch.Tensor) -> dict:
    sets = evaluation.SetDistances(real_features.shape[1], kid_subsets=20)
    for start in range(0, len(real_features), 5):  # fed in batches, as the evaluator streams them
        sets.update(real_features[start:start + 5], real=True)
        sets.update(fake_features[start:start + 5], real=False)
    return sets.compute()


def test_fid_kid_of_a_set_with_itself_is_near_zero_and_grow_with_noise(pooled_features):
    real = crops("immunohistochemistry", 16)
    with torch.no_grad():
        features = {sigma: pooled_features(noisy(real, sigma) if sigma else real) for sigma in (0, 0.05, 0.3)}
    same, light, heavy = (set_distances(features[0], features[sigma]) for sigma in (0, 0.05, 0.3))
    assert abs(same["fid"]) < 1e-3 * heavy["fid"]
    assert same["fid"] < light["fid"] < heavy["fid"]
    # KID's unbiased estimator gives -2(mean k(x,x) - mean k(x,y))/n for a set with itself: ~0 for large n.
    assert abs(same["kid"]) < 0.2 * heavy["kid"]
    assert same["kid"] < light["kid"] < heavy["kid"]


def test_vgg_set_features_are_unit_rms_vectors(pooled_features):
    features = pooled_features(crops("coffee", 3))
    assert features.shape == (3, 128)
    torch.testing.assert_close(features.pow(2).mean(1), torch.ones(3))


def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, mu2, cov1, cov2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * scipy.linalg.sqrtm(cov1 @ cov2).real)
    got = evaluation.frechet_distance(*(torch.from_numpy(t) for t in (mu1, cov1, mu2, cov2)))
    assert got == pytest.approx(expected, rel=1e-6)


def test_sifid_is_zero_for_identical_images_and_positive_otherwise():
    from texnets.vgg import VGGEncoder
    encoder = VGGEncoder(["pool1"])
    image, other = crops("gravel", 1, 48), noisy(crops("gravel", 1, 48), 0.2)
    with torch.no_grad():
        (m1, c1), (m2, c2) = (evaluation.position_statistics(encoder(x)["pool1"] / 255) for x in (image, other))
    identical = evaluation.frechet_distance(m1[0], c1[0], m1[0], c1[0])
    different = evaluation.frechet_distance(m1[0], c1[0], m2[0], c2[0])
    assert abs(identical) < 1e-6 * different and different > 0.01


def test_lpips_diversity_is_zero_for_identical_samples_random_backbone():
    model, label = evaluation.load_lpips("alex", random_backbone=True)
    assert "RANDOM backbone" in label and "tests only" in label
    same = evaluation.PairwiseDiversity(max_samples=4)
    same.add(crops("coffee", 1).expand(4, -1, -1, -1))
    assert same.compute(model, "cpu").mean == pytest.approx(0.0, abs=1e-6)
    varied = evaluation.PairwiseDiversity(max_samples=3)
    varied.add(crops("coffee", 5))  # keeps the first 3 only
    stat = varied.compute(model, "cpu")
    assert len(varied.images) == 3 and stat.count == 3 and stat.mean > 1e-3


def test_vgg_feature_diversity_is_zero_for_identical_samples_and_grows_with_difference():
    distance = evaluation.VGGFeatureDistance()
    same = evaluation.PairwiseDiversity(max_samples=3)
    same.add(crops("coffee", 1).expand(3, -1, -1, -1))
    assert same.compute(distance, "cpu").mean == pytest.approx(0.0, abs=1e-6)
    image = crops("coffee", 1)
    noise = torch.Generator().manual_seed(0)
    slightly = (image + 0.02 * torch.randn(image.shape, generator=noise)).clamp(0, 1)
    strongly = (image + 0.3 * torch.randn(image.shape, generator=noise)).clamp(0, 1)
    near, far = float(distance(image, slightly)), float(distance(image, strongly))
    assert 0 < near < far


def test_lpips_without_backbone_weights_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(TexnetsError) as error:
        evaluation.load_lpips("alex")
    message = str(error.value)
    assert "\n" not in message and "alexnet-owt-7be5be79.pth" in message and str(tmp_path) in message


def test_style_distances_order_the_texture_below_noise():
    from texnets.vgg import VGGEncoder
    layers = ["relu1_1", "relu2_1"]
    encoder = VGGEncoder(layers)
    exemplar, texture = crops("gravel", 2, 48, seed=3).split(1)
    noise = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    totals = {}
    for name, image in (("texture", texture), ("noise", noise)):
        distances = evaluation.StyleDistances(layers)
        with torch.no_grad():
            distances.set_exemplar(encoder(exemplar))
            distances.update(encoder(image))
        totals[name] = {stat: sum(distances.stats[(stat, layer)].mean for layer in layers)
                        for stat in evaluation.STYLE_STATISTICS}
    for stat in evaluation.STYLE_STATISTICS:
        assert totals["texture"][stat] < 0.5 * totals["noise"][stat], stat


def test_exemplar_gram_score_ranks_windows_below_noise_and_splits_off_the_systematic_part():
    layers = ["relu1_1", "relu2_1"]
    exemplar, *windows = crops("gravel", 3, 48, seed=3).split(1)
    noise = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    scorer = evaluation.ExemplarGramScore(exemplar[0], layers)
    real, random = scorer.score(torch.cat(windows)), scorer.score(noise)
    assert scorer.score(exemplar)["mean"] < 1e-9  # the exemplar against itself
    assert real["count"] == 2 and set(real["layers"]) == set(layers)
    assert real["mean"] < 0.5 * random["mean"]
    assert real["min"] <= real["mean"] <= real["max"]
    for summary in (real, random):  # convexity: the mean Gram matrices' loss never exceeds the mean loss
        assert 0 <= summary["systematic"] <= summary["mean"] * (1 + 1e-6)


def test_sliced_wasserstein_distance_is_reproducible():
    from texnets.vgg import VGGEncoder
    encoder = VGGEncoder(["relu1_1"])
    exemplar, image = crops("gravel", 2, seed=5).split(1)
    values = []
    for _ in range(2):
        distances = evaluation.StyleDistances(["relu1_1"], statistics=["sw"])
        with torch.no_grad():
            distances.set_exemplar(encoder(exemplar))
            distances.update(encoder(image))
        values.append(distances.stats[("sw", "relu1_1")].mean)
    assert values[0] == values[1] > 0


def test_psnr_and_ssim_of_identical_and_noisy_images():
    images = crops("astronaut", 2)
    psnr, ssim = evaluation.psnr_ssim(images, images)
    assert torch.isinf(psnr).all() and torch.allclose(ssim, torch.ones(2))
    psnr, ssim = evaluation.psnr_ssim(noisy(images, 0.1), images)
    assert (15 < psnr).all() and (psnr < 30).all() and (ssim < 0.9).all()


def test_running_stat_matches_statistics_module():
    values = [3.0, 1.5, 7.25, -2.0, 4.0]
    stat = evaluation.RunningStat()
    stat.add(torch.tensor(values[:3]))
    for value in values[3:]:
        stat.add(value)
    assert stat.count == 5
    assert stat.mean == pytest.approx(statistics.mean(values))
    assert stat.std == pytest.approx(statistics.stdev(values))


def test_pairing_by_name_by_order_and_refusals(tmp_path):
    from pathlib import Path
    gen = [Path("g/b.png"), Path("g/a.png")]
    assert evaluation.pair_images(gen, [Path("r/a.jpg"), Path("r/b.jpg")]) == [
        (Path("g/b.png"), Path("r/b.jpg")), (Path("g/a.png"), Path("r/a.jpg"))]
    with pytest.raises(TexnetsError, match="mismatched pairs: generated b.png has no reference"):
        evaluation.pair_images(gen, [Path("r/a.jpg"), Path("r/c.jpg")])
    with pytest.raises(TexnetsError, match="reference c.jpg has no generated image"):
        evaluation.pair_images(gen, [Path("r/a.jpg"), Path("r/b.jpg"), Path("r/c.jpg")])
    with pytest.raises(TexnetsError, match="named 'a'"):
        evaluation.pair_images([Path("g/a.png"), Path("g/x/a.png")], [Path("r/a.png")])
    assert evaluation.pair_images(gen, [Path("r/1.png"), Path("r/2.png")], by="order")[0] == (gen[0], Path("r/1.png"))
    with pytest.raises(TexnetsError, match="counts differ"):
        evaluation.pair_images(gen, [Path("r/1.png")], by="order")


def test_stream_batches_groups_equal_sizes_and_keeps_order(tmp_path):
    from texnets.images import save_image
    sizes = [32, 32, 32, 40, 32]
    paths = []
    for i, size in enumerate(sizes):
        paths.append(save_image(torch.full((1, 3, size, size), i / 10), tmp_path / f"{i}.png"))
    batches = list(evaluation.stream_batches([(p,) for p in paths], batch_size=2, progress=False))
    assert [len(rows) for rows, _ in batches] == [2, 1, 1, 1]
    assert [rows[0][0].name for rows, _ in batches] == ["0.png", "2.png", "3.png", "4.png"]
    assert batches[2][1][0].shape == (1, 3, 40, 40)


def test_inception_extractors_wiring_with_random_weights(monkeypatch):
    """The standard-Inception path, where torch-fidelity is installed: weights are replaced by the random
    initialisation (no download), so only shapes and wiring are checked, not values."""
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
    monkeypatch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
    inception = evaluation.load_inception()
    images = crops("coffee", 2, 64)
    with torch.no_grad():
        assert evaluation.InceptionPooledFeatures(inception)(images).shape == (2, 2048)
        early64 = evaluation.InceptionEarlyFeatures(inception, 64)(images)
        early192 = evaluation.InceptionEarlyFeatures(inception, 192)(images)
    assert early64.shape[:2] == (2, 64) and early64.shape[-1] > early192.shape[-1] > 1
    assert early192.shape[:2] == (2, 192)
