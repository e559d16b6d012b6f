"""CSMS_API_TOKENS entries carry a name (TOKEN:ROLE:NAME): who the command audit records. A bad or repeated name
stops start-up with one line naming the setting."""

from __future__ import annotations

import hashlib

import pytest

from csms.config import ConfigError, load, parse_api_token

pytestmark = pytest.mark.fast


def test_a_token_spec_gives_its_role_and_name() -> None:
    named = parse_api_token("s3cret-token:operator:alice@ops")
    assert (named.secret, named.role, named.name) == ("s3cret-token", "operator", "alice@ops")
    unnamed = parse_api_token("s3cret-token")
    assert unnamed.role == "admin"
    # Unnamed: stable on every replica, and not the token itself.
    assert unnamed.name == "token-" + hashlib.sha256(b"s3cret-token").hexdigest()[:8]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("s3cret-token:admin:bad name", "token name 'bad name' must be"),
        ("s3cret-token:admin:ops,other-token:read:ops", "token names must be unique: ops"),
        ("s3cret-token:root:ops", "unknown role 'root'"),
    ],
)
def test_bad_token_names_stop_start_up_with_one_line(tokens: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={"CSMS_API_TOKENS": tokens})
    assert "CSMS_API_TOKENS" in str(raised.value) and message in str(raised.value)
    assert "\n" not in str(raised.value)
