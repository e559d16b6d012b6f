"""WHERE clauses of only the filters a caller gave.

A list query written as ``($1 IS NULL OR station_id = $1)`` serves every filter combination with one statement,
but asyncpg prepares it and Postgres soon settles on a generic plan that cannot know which filters are set: it
walks the whole table in id order instead of using the station's index. One statement per combination of given
filters keeps each plan right (the combinations are few).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def given(filters: Iterable[tuple[Any, str]], args: list[Any]) -> str:
    """`filters` are (value, clause with one `${}`); the set ones (not None, not "") are appended to `args` and
    their clauses joined with AND ("true" when none is set)."""
    clauses = []
    for value, clause in filters:
        if value is not None and value != "":
            args.append(value)
            clauses.append(clause.format(len(args)))
    return " AND ".join(clauses) or "true"
