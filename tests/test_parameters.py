"""The parameters a person may set (parameters.py): one table for the wire contract, personas and
the magics. Pure, no server."""

from __future__ import annotations

import pytest

from cellmage_server.parameters import PARAMETERS, ParameterError, check
from cellmage_server.routes.openai.fields import CHAT_PASSED, REFUSED


@pytest.mark.parametrize(
    "name,value",
    [("temperature", 0), ("temperature", 2), ("top_p", 1), ("max_tokens", 1), ("seed", -5), ("seed", 7.0),
     ("presence_penalty", -2), ("frequency_penalty", 2), ("stop", "END"), ("stop", ["a", "b", "c", "d"])],
)
def test_values_in_range_are_taken(name, value):
    assert check(name, value) == value


@pytest.mark.parametrize(
    "name,value,said",
    [
        ("temperature", 2.1, "from 0 to 2"), ("top_p", -0.1, "from 0 to 1"), ("max_tokens", 0, "at least 1"),
        ("max_tokens", 2.5, "whole number"), ("seed", True, "whole number"), ("seed", 2**63, "64-bit"),
        ("top_p", float("nan"), "from 0 to 1"), ("stop", [], "1 to 4"), ("stop", ["x"] * 5, "1 to 4"),
        ("stop", [""], "1 to 4"), ("stop", 3, "a string or a list"), ("presence_penalty", "high", "from -2 to 2"),
    ],
)
def test_values_out_of_range_say_the_range(name, value, said):
    with pytest.raises(ParameterError, match=said):
        check(name, value)


@pytest.mark.parametrize("name", sorted(REFUSED) + ["OPENAI_API_KEY", "my_secret", "user"])
def test_nothing_that_reroutes_or_carries_credentials_may_be_set(name):
    with pytest.raises(ParameterError, match="is not a parameter you may set: where a request goes and with which credentials"):
        check(name, "x")


def test_every_parameter_is_one_the_openai_endpoint_passes_on_too():
    assert set(PARAMETERS) <= CHAT_PASSED
