"""OCPP-J framing: every way a frame can be broken maps to the spec's error code and message id."""

from __future__ import annotations

import json

import orjson
import pytest

from csms.ocpp import Call, CallError, CallResult, FrameError, encode, parse_frame
from csms.ocpp.frames import sniff_header


def test_parses_the_three_message_types() -> None:
    assert parse_frame('[2,"a1","Heartbeat",{}]', "1.6") == Call("a1", "Heartbeat", {})
    assert parse_frame(b'[3, "a1", {"currentTime": "x"}]', "1.6") == CallResult("a1", {"currentTime": "x"})
    assert parse_frame('[4,"a1","GenericError","bad",{"k":1}]', "2.0.1") == CallError(
        "a1", "GenericError", "bad", {"k": 1}
    )


def test_call_error_is_parsed_leniently() -> None:
    assert parse_frame('[4,"a1","GenericError","bad"]', "1.6") == CallError("a1", "GenericError", "bad", {})
    assert parse_frame('[4,"a1","GenericError",null,null]', "1.6") == CallError("a1", "GenericError", "", {})
    assert parse_frame('[4,"a1","GenericError","d","x"]', "1.6") == CallError("a1", "GenericError", "d", {"value": "x"})


LONG_ID = "x" * 37

# raw frame, version, expected code, expected id, expected reply
BROKEN = [
    ("not json", "1.6", "FormationViolation", "-1", True),
    ("not json", "2.0.1", "RpcFrameworkError", "-1", True),
    (b"\xff\xfe", "1.6", "FormationViolation", "-1", True),
    ('{"a": 1}', "1.6", "FormationViolation", "-1", True),
    ('{"a": 1}', "2.0.1", "RpcFrameworkError", "-1", True),
    ("[]", "1.6", "FormationViolation", "-1", True),
    ("[2]", "2.0.1", "RpcFrameworkError", "-1", True),
    ('[2, 17, "Heartbeat", {}]', "1.6", "FormationViolation", "-1", True),
    ('[2, 17, "Heartbeat", {}]', "2.0.1", "RpcFrameworkError", "-1", True),
    ('[2, "", "Heartbeat", {}]', "2.0.1", "RpcFrameworkError", "-1", True),
    ('["2", "a1", "Heartbeat", {}]', "2.0.1", "RpcFrameworkError", "a1", True),
    ('[true, "a1", "Heartbeat", {}]', "1.6", "FormationViolation", "a1", True),
    ('[7, "a1", "Heartbeat", {}]', "1.6", "FormationViolation", "a1", True),
    ('[7, "a1", "Heartbeat", {}]', "2.0.1", "MessageTypeNotSupported", "a1", True),
    (f'[2, "{LONG_ID}", "Heartbeat", {{}}]', "1.6", "FormationViolation", LONG_ID, True),
    (f'[2, "{LONG_ID}", "Heartbeat", {{}}]', "2.0.1", "RpcFrameworkError", LONG_ID, True),
    ('[2, "a1", "Heartbeat"]', "1.6", "FormationViolation", "a1", True),
    ('[2, "a1", "Heartbeat", {}, 5]', "2.0.1", "RpcFrameworkError", "a1", True),
    ('[2, "a1", 5, {}]', "2.0.1", "RpcFrameworkError", "a1", True),
    ('[2, "a1", "", {}]', "1.6", "FormationViolation", "a1", True),
    ('[2, "a1", "Heartbeat", []]', "1.6", "FormationViolation", "a1", True),
    ('[2, "a1", "Heartbeat", null]', "2.0.1", "FormatViolation", "a1", True),
    # Responses are never answered with a CallError (a CallError only answers a Call).
    ("[3, 5, {}]", "1.6", "FormationViolation", "-1", False),
    ('[3, "a1"]', "1.6", "FormationViolation", "a1", False),
    ('[3, "a1", "x"]', "2.0.1", "FormatViolation", "a1", False),
    (f'[3, "{LONG_ID}", {{}}]', "1.6", "FormationViolation", LONG_ID, False),
    ('[4, "a1", 5, "d", {}]', "2.0.1", "RpcFrameworkError", "a1", False),
    ('[4, "a1", "GenericError"]', "1.6", "FormationViolation", "a1", False),
    # The standard library's extensions stay refused when orjson's refusal sends a frame to it.
    ('[2, "a1", "DataTransfer", {"vendorId": NaN}]', "1.6", "FormationViolation", "-1", True),
    ("[" * 5000, "1.6", "FormationViolation", "-1", True),
    # An unpaired surrogate escape is valid JSON: the id is read (and echoed) but is not a usable id.
    ('[2, "a\\ud800", "Heartbeat", {}]', "1.6", "FormationViolation", "a\ud800", True),
    ('[2, "\\udc00", "Heartbeat", {}]', "2.0.1", "RpcFrameworkError", "\udc00", True),
    ('[3, "a\\ud800", {}]', "1.6", "FormationViolation", "a\ud800", False),
]


@pytest.mark.parametrize(("raw", "version", "code", "unique_id", "reply"), BROKEN)
def test_broken_frames(raw: str | bytes, version: str, code: str, unique_id: str, reply: bool) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(raw, version)
    assert (info.value.code, info.value.unique_id, info.value.reply) == (code, unique_id, reply)
    assert info.value.description
    answer = info.value.to_call_error()
    assert answer.unique_id == unique_id and answer.code == code


def test_an_unpaired_surrogate_id_is_echoed_as_valid_json() -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(r'[2, "id-\ud800", "Heartbeat", {}]', "1.6")
    text = encode(info.value.to_call_error())
    assert text.startswith(r'[4,"id-\ud800","FormationViolation",')  # the station's id, escaped as it sent it
    assert text.isascii() and json.loads(text)[1] == "id-\ud800"


def test_json_orjson_refuses_but_the_grammar_allows_is_parsed() -> None:
    """An unpaired surrogate in a payload string is left for the domain check, which names the field."""
    assert parse_frame(r'[2, "a1", "Authorize", {"idTag": "\udc00"}]', "1.6") == Call(
        "a1", "Authorize", {"idTag": "\udc00"}
    )


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported OCPP version"):
        parse_frame('[2,"a","Heartbeat",{}]', "1.5")


def test_encode_round_trips_and_is_compact_text() -> None:
    frames: list[Call | CallResult | CallError] = [
        Call("1-ab", "MeterValues", {"connectorId": 1, "meterValue": [{"v": 1.5, "s": "ü"}]}),
        CallResult("1-ab", {}),
        CallError("1-ab", "InternalError", "boom", {"where": "here"}),
    ]
    for frame in frames:
        text = encode(frame)
        assert isinstance(text, str)
        assert " " not in text.replace("ü", "")
        assert parse_frame(text, "1.6") == frame


def test_encode_truncates_long_error_descriptions() -> None:
    text = encode(CallError("1", "GenericError", "d" * 1000))
    assert len(orjson.loads(text)[3]) == 255


def test_encode_refuses_non_json_payloads() -> None:
    with pytest.raises(TypeError):
        encode(CallResult("1", {"k": object()}))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('[2, "abc-1", "DataTransfer", {"data": "' + "x" * 100_000, (2, "abc-1")),
        (b'  [ 3 ,"id"  , {', (3, "id")),
        ('{"foo": 1}', (None, None)),
        ('[2, 17, "X"', (None, None)),
        ('[2, "' + "y" * 40 + '"', (None, None)),
    ],
)
def test_sniff_header(raw: str | bytes, expected: tuple[int | None, str | None]) -> None:
    assert sniff_header(raw) == expected
