"""texnets.cli, what the front doors share: the --size flag (shorter side or square, H W, a minimum), markdown
tables, one-line errors through main_guard, and device choice."""
import pytest
import torch

from texnets.cli import layer_list, main_guard, markdown_table, parse_size, pick_device, synchronize
from texnets.errors import TexnetsError


def test_parse_size_takes_one_or_two_values_above_a_minimum():
    assert parse_size(None) is None
    assert parse_size([64]) == 64 and parse_size(64) == 64  # one value: the shorter side
    assert parse_size([64], square=True) == (64, 64)
    assert parse_size([32, 48]) == (32, 48)
    with pytest.raises(TexnetsError, match=r"one value \(shorter side\) or two \(H W\), each at least 16"):
        parse_size([8])
    with pytest.raises(TexnetsError, match=r"one value \(a square\) or two \(H W\), each at least 8"):
        parse_size([4, 16], minimum=8, square=True)
    with pytest.raises(TexnetsError):
        parse_size([16, 16, 16])


def test_markdown_table_escapes_pipes_in_cells():
    table = markdown_table(["a", "b"], [[1, "x|y"], ["", 2.5]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "|  | 2.5 |"]


def test_main_guard_turns_user_errors_into_one_line_and_exit_2(capsys):
    @main_guard
    def main():
        raise TexnetsError("bad input")
    assert main() == 2 and capsys.readouterr().err == "error: bad input\n"


def test_devices():
    assert pick_device("cpu") == torch.device("cpu")
    synchronize(torch.device("cpu"))  # nothing to wait for, and no error
    with pytest.raises(TexnetsError, match="unknown device"):
        pick_device("abacus")


def test_a_layer_list_is_written_the_same_way_on_every_front_door():
    assert layer_list("relu1_1,relu2_1") == layer_list(["relu1_1", "relu2_1"]) == ["relu1_1", "relu2_1"]
    assert layer_list(["relu1_1,relu2_1", "pool1"]) == ["relu1_1", "relu2_1", "pool1"]
    assert layer_list(None) == [] and layer_list("relu4_2,") == ["relu4_2"]
