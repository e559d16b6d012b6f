"""Every setting in csms/config.py is reachable through a typed chart value and documented in the README.

The list of settings comes from `csms.config.SETTINGS` itself, so a setting added there fails these checks
until its chart value (values.yaml, values.schema.json) and README row exist; and a chart value or README row
for a setting that no longer exists fails them too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from csms import config as csms_config
from tests.deploy.chart import CHART, REPO, Rendered, template

SETTINGS = {s.name: s for s in csms_config.SETTINGS}

# Settings the chart maps outside `config` (secrets, endpoints, mounted files, the pod's own identity), with the
# value an operator sets. Everything else is `config.<camelCase name>`.
ELSEWHERE = {
    "database_url": "database.url",
    "node_id": "(the pod's name)",
    "advertise_address": "(the pod's IP)",
    "api_tokens": "apiTokens.tokens",
    "internal_secret": "internalSecret.value",
    "etcd_endpoints": "etcd.endpoints",
    "etcd_prefix": "etcd.prefix",
    "etcd_username": "etcd.username",
    "etcd_password": "etcd.password",
    "etcd_ca_file": "etcd.ca",
    "tls_cert_file": "tls.secretName",
    "tls_key_file": "tls.secretName",
    "tls_client_ca_file": "tls.clientCa.secretName",
    "ca_cert_file": "certificateAuthority.secretName",
    "ca_key_file": "certificateAuthority.secretName",
    "console_secret": "(derived from apiTokens and internalSecret)",
    "export_webhook_secret": "exportWebhook.secret",
}
# The schema type a setting's parser implies.
SCHEMA_TYPES = {
    "_positive_int": "integer",
    "_non_negative_int": "integer",
    "_port": "integer",
    "_positive_float": "number",
    "_non_negative_float": "number",
    "_bool": "boolean",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def _schema_config() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    config: dict[str, Any] = schema["properties"]["config"]
    return config


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"values.yaml has no {dotted}"
        node = node[part]
    return node


def _as_env(value: Any) -> str:
    """A chart value as the ConfigMap renders it (`quote` of a YAML scalar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _how_to_add(name: str) -> str:
    setting = SETTINGS[name]
    default = setting.default or '""'
    return (
        f"{setting.env} has no chart value: add `config.{_camel(name)}: {default}` to "
        f"helm/csms/values.yaml, a `{_camel(name)}` property to values.schema.json (properties.config), and a "
        "README settings row (or map it in ELSEWHERE here if the chart sets it another way)"
    )


def test_every_setting_has_a_chart_value() -> None:
    values = _values()
    properties = _schema_config()["properties"]
    for name in SETTINGS:
        if name in ELSEWHERE:
            if not ELSEWHERE[name].startswith("("):
                _lookup(values, ELSEWHERE[name])
            continue
        key = _camel(name)
        assert key in values["config"], _how_to_add(name)
        assert key in properties, f"values.schema.json lacks properties.config.{key}; " + _how_to_add(name)


def test_every_chart_config_value_is_a_setting() -> None:
    known = {_camel(n) for n in SETTINGS if n not in ELSEWHERE}
    assert _schema_config()["additionalProperties"] is False, "the schema must reject misspelt config keys"
    for key in [*_values()["config"], *_schema_config()["properties"]]:
        assert key in known, f"config.{key} is not a setting in csms/config.py (removed or renamed?)"


def test_chart_defaults_are_the_binary_defaults() -> None:
    config = _values()["config"]
    for name, setting in SETTINGS.items():
        if name in ELSEWHERE:
            continue
        chart = setting.parse(_as_env(config[_camel(name)]))
        binary = setting.parse(setting.default)
        assert chart == binary, f"config.{_camel(name)}={chart!r} but {setting.env} defaults to {binary!r}"


def test_schema_types_follow_the_parsers() -> None:
    properties = _schema_config()["properties"]
    for name, setting in SETTINGS.items():
        if name in ELSEWHERE:
            continue
        prop = properties[_camel(name)]
        expected = SCHEMA_TYPES.get(getattr(setting.parse, "__name__", ""), "string")
        narrower = expected == "number" and prop["type"] == "integer"  # e.g. drainTimeout, whole seconds
        assert prop["type"] == expected or narrower, f"config.{_camel(name)}: schema {prop['type']}, parser {expected}"
        for choice in prop.get("enum", []):
            setting.parse(_as_env(choice))  # every value the schema admits starts the replica


def test_configmap_sets_every_config_value(helm: str) -> None:
    rendered: Rendered = template(helm, [CHART / "ci" / "default-values.yaml"], ["config.idTagCacheSeconds=0"])
    data = rendered.one("ConfigMap", "csms")["data"]
    for name, setting in SETTINGS.items():
        if name not in ELSEWHERE:
            assert setting.env in data, f"the ConfigMap lacks {setting.env}"
            setting.parse(data[setting.env])
    assert data["CSMS_ID_TAG_CACHE_SECONDS"] == "0"


_ROW = re.compile(r"^\| `(CSMS_[A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)


def test_readme_lists_every_setting_with_its_chart_value() -> None:
    rows = dict(_ROW.findall((REPO / "README.md").read_text()))
    expected = {s.env for s in SETTINGS.values()}
    assert set(rows) == expected, (
        f"README settings table: missing {sorted(expected - set(rows))}, unknown {sorted(set(rows) - expected)}"
    )
    for name, setting in SETTINGS.items():
        value = ELSEWHERE.get(name, f"config.{_camel(name)}")
        assert value in rows[setting.env], f"README row {setting.env} should name its chart value {value}"


@pytest.mark.parametrize("name", ["future_knob"])
def test_the_coverage_check_catches_a_new_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the checks above: a setting only config.py knows must fail them."""
    monkeypatch.setitem(SETTINGS, name, csms_config.Setting(name, str, "x", "new"))
    with pytest.raises(AssertionError, match="CSMS_FUTURE_KNOB has no chart value"):
        test_every_setting_has_a_chart_value()
    with pytest.raises(AssertionError, match="CSMS_FUTURE_KNOB"):
        test_readme_lists_every_setting_with_its_chart_value()
