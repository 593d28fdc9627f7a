"""Flag types shared by commands: every number finite and in the range its scenario key allows."""

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.cli.options import number_type
from replay.config import RANGES


@pytest.mark.parametrize("key", sorted(RANGES))
def test_each_flag_type_takes_the_range_of_its_key(key):
    limits = RANGES[key]
    kind = number_type(key)
    assert kind.convert(str(int(limits.high)), None, None) == limits.high
    with pytest.raises(Exception, match="not in the range"):
        kind.convert(str(int(limits.high) + 1), None, None)
    if not limits.integer:
        with pytest.raises(Exception, match="'nan' is not a finite number"):
            kind.convert("nan", None, None)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--latency-ms", "nan"], "Invalid value for '--latency-ms': 'nan' is not a finite number."),
        (["--rpm", "inf"], "Invalid value for '--rpm': inf is not in the range 0<x<=1000000000.0."),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
    ],
)
def test_mock_server_flags_refuse_non_finite_values(args, message):
    result = CliRunner().invoke(cli, ["mock-server", *args])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
