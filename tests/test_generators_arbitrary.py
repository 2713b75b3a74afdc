"""The arbitrary-style generators: the decoder mirrors VGG19, AdaINNet and WCTNet keep sizes, levels, configs."""
import pytest
import torch

from texnets.errors import TexnetsError
from texnets.generators import AdaINNet, WCTNet, build_generator
from texnets.generators.decoder import DecoderConfig, VGGDecoder, encoder_margin


def test_the_relu4_1_decoder_is_the_reference_decoder():
    decoder = VGGDecoder(DecoderConfig("relu4_1"))
    assert sum(p.numel() for p in decoder.parameters()) == 3_505_219  # pytorch-AdaIN's net.decoder
    assert decoder(torch.rand(1, 512, 4, 5)).shape == (1, 3, 32, 40)
    assert VGGDecoder(DecoderConfig("relu1_1"))(torch.rand(1, 64, 9, 7)).shape == (1, 3, 9, 7)


def test_encoder_margin_grows_with_depth():
    margins = [encoder_margin(layer) for layer in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")]
    assert margins == sorted(margins) and margins[0] == 1


@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_outputs_keep_the_photo_size(size):
    adain_net, wct_net = AdaINNet(width=0.125), WCTNet(width=0.125, levels=["relu1_1", "relu3_1"])
    photo, style = torch.rand(2, 3, *size), torch.rand(1, 3, 40, 24)
    for net in (adain_net, wct_net):
        with torch.no_grad():
            assert net(photo, style).shape == (2, 3, *size)


def test_checkpoints_hold_decoders_only_and_round_trip():
    net = WCTNet(width=0.125, levels=["relu2_1", "relu1_1"])
    assert net.levels == ["relu2_1", "relu1_1"]  # coarse to fine
    assert all(key.startswith("decoders.") for key in net.state_dict())
    rebuilt = build_generator("wct_net", net.config_dict())
    rebuilt.load_state_dict(net.state_dict())
    assert rebuilt.config == net.config and rebuilt.config.levels == ["relu1_1", "relu2_1"]


def test_levels_without_a_decoder_are_refused_by_name():
    net = WCTNet(width=0.125, levels=["relu1_1"])
    with pytest.raises(TexnetsError, match="no trained decoder for relu5_1, relu4_1; it has relu1_1"):
        net.check_levels(["relu5_1", "relu4_1"])
    with pytest.raises(TexnetsError, match="unknown level 'relu4_2'"):
        net.check_levels(["relu4_2"])
    with pytest.raises(TexnetsError, match="a decoder starts at one of"):
        AdaINNet(layer="relu4_2")
