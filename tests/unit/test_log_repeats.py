"""The repeat filter: one line per kind per interval, with the count of what it held back."""

from __future__ import annotations

import logging

import pytest

from csms.observability.logs import JsonFormatter, RepeatFilter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, station_id: str | None = None, level: int = logging.WARNING) -> logging.LogRecord:
    record = logging.LogRecord("csms.test", level, __file__, 1, msg, (), None)
    if station_id is not None:
        record.station_id = station_id
    return record


def test_one_line_per_kind_and_interval_with_a_count() -> None:
    clock = Clock()
    f = RepeatFilter(10.0, clock=clock)
    passed = [f.filter(_record("bad value", "CP-1")) for _ in range(100)]
    assert passed.count(True) == 1
    assert f.filter(_record("bad value", "CP-2"))  # another station is another kind
    assert f.filter(_record("other message", "CP-1"))  # and so is another message
    clock.now = 10.0
    record = _record("bad value", "CP-1")
    assert f.filter(record)
    assert record.repeated == 99
    assert not f.filter(_record("bad value", "CP-1"))


def test_info_passes_and_memory_is_bounded() -> None:
    clock = Clock()
    f = RepeatFilter(10.0, max_kinds=100, clock=clock)
    assert all(f.filter(_record("connected", "CP-1", logging.INFO)) for _ in range(5))
    for i in range(1000):
        assert f.filter(_record("bad value", f"CP-{i}"))
    assert len(f._kinds) <= 100


def test_configure_logging_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    configure_logging("info", "json", "n1")
    assert any(isinstance(f, RepeatFilter) for f in root.handlers[0].filters)


def test_json_lines_survive_an_unpaired_surrogate() -> None:
    record = _record("invalid frame")
    record.message_id = "id-\ud800"
    line = JsonFormatter("n1").format(record)
    assert line.isascii() and '"message_id":"id-\\ud800"' in line
