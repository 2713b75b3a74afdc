"""texnets.generators.base.Generator: every registered generator round-trips through the plain dict a
checkpoint stores, refuses an unknown hyper-parameter in one line, and never shares its config with the
caller."""
import pytest

from texnets.errors import TexnetsError
from texnets.generators import GENERATORS, Generator, build_generator


@pytest.mark.parametrize("model_type", sorted(GENERATORS))
def test_config_round_trip_and_unknown_keys(model_type):
    cls = GENERATORS[model_type]
    assert issubclass(cls, Generator) and cls.model_type == model_type
    config = cls.config_class()
    net = cls(config)
    assert net.config == config and net.config is not config  # a copy: the caller's config stays its own
    rebuilt = build_generator(model_type, net.config_dict())
    assert type(rebuilt) is cls and rebuilt.config_dict() == net.config_dict()
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in net.parameters()]
    with pytest.raises(TexnetsError, match=f"unknown {model_type.replace('_', '-')} hyper-parameter"):
        build_generator(model_type, {**net.config_dict(), "no_such_option": 1})


def test_overrides_without_a_config_follow_the_fields_they_depend_on():
    net = GENERATORS["skip_net"](levels=2, down_channels=8, up_channels=8)  # per-level lists of 2, not 5
    assert net.config.levels == 2 and net.config.down_channels == [8, 8] and len(net.config.skip_channels) == 2
