"""The command panel's HTML, rendered once per protocol version (bulk or per station) and reused.

The panel is one form per OCPP action with every schema field: 50-100 KB, most of a station page's rendering time,
and the same for every station of a version. The station id is the only difference; it goes in afterwards.
"""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup, escape

from csms.console.forms import CommandForm, command_forms

_STATION = "\x00station\x00"  # cannot occur in rendered schema text (NUL is not valid in HTML)
_FORMS = '{% for form in forms %}{% include "_command_form.html" %}{% endfor %}'


@cache
def _rendered(env: jinja2.Environment, version: str, bulk: bool) -> str:
    forms = [form for form in command_forms(version) if not bulk or _simple(form)]
    context = {"forms": forms, "bulk": bulk, "prefix": "bulk-" if bulk else "", "station": {"id": _STATION}}
    return env.from_string(_FORMS).render(context)


def _simple(form: CommandForm) -> bool:
    """Bulk commands: the forms without free JSON (Reset, ChangeAvailability, TriggerMessage, ...)."""
    return all(field.kind != "json" for field in form.fields)


def station_panel(env: jinja2.Environment, version: str, station_id: str) -> Markup:
    """Every command form of `version`, addressed to `station_id`."""
    return Markup(_rendered(env, version, False).replace(_STATION, str(escape(station_id))))


def bulk_panel(env: jinja2.Environment) -> Markup:
    """The OCPP 1.6 forms without free JSON, for the stations selected on the list page."""
    return Markup(_rendered(env, "1.6", True))
