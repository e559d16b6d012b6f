"""fastjsonschema's generated validators, with each all-string ``enum`` checked as one set lookup.

fastjsonschema (2.19+) checks an enum as a chain, ``isinstance(v, str) and v == 'A' or isinstance(v, str) and
v == 'B' or ...``, to keep 1, 1.0 and True apart. OCPP enums are strings and long (22 measurands, 18 units),
and a MeterValues.req carries six of them per sampled value: the chains were ~40 % of validating a 12-sample
message (`benchmarks/bench_message_cpu.py`). For a chain whose every alternative is that string test on one
variable, ``isinstance(v, str) and v in {'A', 'B', ...}`` accepts and refuses exactly the same values; any
other line is left as generated, so error messages, rules and paths stay fastjsonschema's own. The rewrite
works on the text of fastjsonschema's public ``compile_to_code`` (an enum check is one generated line, each
value a ``repr``): parsing that code into a syntax tree instead tripled the start-up compile (2 s -> 7 s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

_LITERAL = r"(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")"  # a str's repr, quotes and escapes included
_ONE = r"isinstance\((?P=var), str\) and (?P=var) == " + _LITERAL
_CHAIN = re.compile(
    r"^(?P<indent>[ \t]*)if not \((?P<chain>isinstance\((?P<var>\w+), str\) and (?P=var) == "
    + _LITERAL
    + r"(?: or "
    + _ONE
    + r")*)\):$",
    re.MULTILINE,
)
_VALUE = re.compile(r" == (" + _LITERAL + r")")
_ROOT = re.compile(r"^def (\w+)\(", re.MULTILINE)


def string_enums_as_sets(code: str) -> str:
    """``if not (isinstance(v, str) and v == 'A' or ...):`` lines -> ``if not (isinstance(v, str) and v in {...}):``."""

    def lookup(match: re.Match[str]) -> str:
        var, values = match["var"], ", ".join(_VALUE.findall(match["chain"]))
        return f"{match['indent']}if not (isinstance({var}, str) and {var} in {{{values}}}):"

    return _CHAIN.sub(lookup, code)


def compile_schema(schema: Mapping[str, Any], *, formats: Mapping[str, str], use_formats: bool) -> Callable[[Any], Any]:
    """Like ``fastjsonschema.compile(schema, formats=formats, use_default=False)``; formats are regex patterns."""
    code = fastjsonschema.compile_to_code(
        dict(schema), formats=dict(formats), use_default=False, use_formats=use_formats
    )
    root = _ROOT.search(code)
    if root is None:
        raise fastjsonschema.JsonSchemaDefinitionException(f"no validator generated for {schema.get('title')!r}")
    namespace: dict[str, Any] = {}
    exec(compile(string_enums_as_sets(code), f"<schema {root[1]}>", "exec"), namespace)  # fastjsonschema's own code
    validate: Callable[[Any], Any] = namespace[root[1]]
    return validate
