"""Status sets come from the `ocpp` package's enums, never as hand-copied string literals in csms/: a copy drifts
when the spec package changes, the enum does not."""

from __future__ import annotations

import ast
import enum
import inspect
from pathlib import Path

import ocpp.v16.enums
import ocpp.v201.enums
import pytest

pytestmark = pytest.mark.fast

CSMS = Path(__file__).resolve().parents[2] / "csms"
# typing.Literal copies in the pydantic API models (mypy needs literal values there; bodies.TokenType has its own
# equality test). Left for the API models' owner to switch to the enum types; no new entry may be added.
KNOWN = {
    "csms/api/models/bodies.py:ocpp.v16.enums.RegistrationStatus",
    "csms/api/models/bodies.py:ocpp.v16.enums.AuthorizationStatus",
    "csms/api/models/bodies.py:ocpp.v201.enums.IdTokenEnumType",
    "csms/api/models/devicemodel.py:ocpp.v201.enums.AttributeEnumType",
    "csms/api/models/devicemodel.py:ocpp.v201.enums.MutabilityEnumType",
}


def _enum_value_sets() -> dict[frozenset[str], str]:
    sets: dict[frozenset[str], str] = {}
    for module in (ocpp.v16.enums, ocpp.v201.enums):
        for name, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, enum.Enum) and len(member) >= 3:
                values = frozenset(str(m.value) for m in member)
                sets.setdefault(values, f"{module.__name__}.{name}")
    return sets


def _string_groups(tree: ast.AST) -> list[tuple[int, frozenset[str]]]:
    """Every literal tuple/list/set of strings, and every call's string positional arguments (`_choice(...)`)."""
    groups = []
    for node in ast.walk(tree):
        elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else None
        if isinstance(node, ast.Call):
            elements = node.args
        if elements and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elements):
            groups.append((node.lineno, frozenset(e.value for e in elements if isinstance(e, ast.Constant))))
    return groups


def test_no_hand_copied_ocpp_enum_in_csms() -> None:
    enums = _enum_value_sets()
    copies = [
        f"{path.relative_to(CSMS.parent)}:{line} copies {enums[values]}"
        for path in sorted(CSMS.rglob("*.py"))
        for line, values in _string_groups(ast.parse(path.read_text()))
        if values in enums and f"{path.relative_to(CSMS.parent)}:{enums[values]}" not in KNOWN
    ]
    assert copies == []
