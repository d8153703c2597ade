"""The request a %%llm cell makes of its flags and the kernel's defaults (magics/session.py):
pure, no server."""

from __future__ import annotations

import pytest

from cellmage_server.flags import parse_flags
from cellmage_server.magics.session import Session, request_body
from cellmage_server.parameters import ParameterError


def test_a_cells_request_is_its_flags_then_the_kernels_defaults():
    session = Session(model="gpt-4o-mini", persona="teacher", overrides={"top_p": 0.9, "temperature": 0.5},
                      mappings={"g4": "gpt-4o"})
    flags = parse_flags("-m g4 --param top_p 0.2 --no-history --no-rollback --alone")

    body = request_body("hi", flags, session, "/root/nb.ipynb", "cell-1")

    assert body == {
        "prompt": "hi", "stream": True, "conversation": "/root/nb.ipynb", "history": False, "remember": False,
        "rollback": False, "cell_id": "cell-1", "model": "gpt-4o", "persona": "teacher",
        "params": {"top_p": 0.2, "temperature": 0.5},
    }
    assert request_body("hi", parse_flags(""), Session(), None, "cell-1") == {"prompt": "hi", "stream": True}


def test_a_parameter_that_may_not_be_set_stops_the_request_being_built():
    with pytest.raises(ParameterError, match="api_base is not a parameter"):
        request_body("hi", parse_flags("--param api_base http://127.0.0.1:9"), Session(), None, None)
