"""The metric names the replicas expose, parsed from csms/observability/ (metrics.py), and a PromQL checker.

Parsing the source (rather than scraping a live replica) keeps the dashboard and alert checks fast and tied to
the one file that defines the metrics.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

OBSERVABILITY = Path(__file__).resolve().parents[2] / "csms" / "observability"

_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}
# Labels Prometheus or the scrape adds to every series, plus the histogram bucket label.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "endpoint", "container", "le"})


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    labels: frozenset[str] | None  # None: any label (Info's keys are known only at run time)


def _constant_strings(node: ast.expr | None) -> list[str] | None:
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return values if len(values) == len(node.elts) else None


def families(source: str | None = None) -> dict[str, Family]:
    """Every `Counter("csms_...", doc, [labels])`-style definition, keyed by exposed sample name."""
    sources = [source] if source is not None else [p.read_text() for p in sorted(OBSERVABILITY.glob("*.py"))]
    exposed: dict[str, Family] = {}
    for node in (n for text in sources for n in ast.walk(ast.parse(text))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)):
            continue
        kind = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        if kind not in _SUFFIXES or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        label_node = node.args[2] if len(node.args) > 2 else None
        for kw in node.keywords:
            if kw.arg == "labelnames":
                label_node = kw.value
        labels = _constant_strings(label_node) if label_node is not None else []
        family = Family(
            first.value,
            kind,
            None if kind == "Info" or labels is None else frozenset(labels),
        )
        base = first.value.removesuffix("_total") if kind == "Counter" else first.value
        for suffix in _SUFFIXES[kind]:
            exposed[base + suffix] = family
    return exposed


# The process and garbage-collector families prometheus-client's default collectors add to the registry.
STANDARD = {
    "process_cpu_seconds_total": Family("process_cpu_seconds_total", "Counter", frozenset()),
    "process_resident_memory_bytes": Family("process_resident_memory_bytes", "Gauge", frozenset()),
    "process_virtual_memory_bytes": Family("process_virtual_memory_bytes", "Gauge", frozenset()),
    "process_open_fds": Family("process_open_fds", "Gauge", frozenset()),
    "process_max_fds": Family("process_max_fds", "Gauge", frozenset()),
    "process_start_time_seconds": Family("process_start_time_seconds", "Gauge", frozenset()),
    "python_gc_collections_total": Family("python_gc_collections_total", "Counter", frozenset({"generation"})),
    "python_gc_objects_collected_total": Family(
        "python_gc_objects_collected_total", "Counter", frozenset({"generation"})
    ),
    "python_gc_objects_uncollectable_total": Family(
        "python_gc_objects_uncollectable_total", "Counter", frozenset({"generation"})
    ),
}

_NAME = re.compile(r"(?<![\w$.])((?:csms|process|python_gc)_[a-zA-Z0-9_]*)")
_SELECTOR = re.compile(r"((?:csms|process|python_gc)_[a-zA-Z0-9_]*|up)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# Strings and Grafana variables never name a metric.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def problems(expr: str, known: dict[str, Family]) -> list[str]:
    """What in one PromQL expression names a metric or label the replicas do not expose."""
    found: list[str] = []
    names = set(_NAME.findall(_STRING.sub('""', expr)))
    for name in sorted(names - set(known)):
        found.append(f"unknown metric {name}")
    usable: set[str] = set(TARGET_LABELS)
    any_label = False
    for name in names & set(known):
        labels = known[name].labels
        if labels is None:
            any_label = True
        else:
            usable |= labels
    for metric, matchers in _SELECTOR.findall(_STRING.sub(lambda m: m.group(0).replace("}", ""), expr)):
        family = known.get(metric)
        allowed = set(TARGET_LABELS) | (set(family.labels) if family and family.labels is not None else set())
        if family is not None and family.labels is None:
            continue
        for label in _MATCHER.findall(_STRING.sub('""', matchers)):
            if label not in allowed and metric != "up":
                found.append(f"{metric} has no label {label!r}")
    if not any_label:
        for group in _GROUPING.findall(expr):
            for label in (part.strip() for part in group.split(",")):
                if label and label not in usable:
                    found.append(f"no metric in the expression has label {label!r}")
    if expr.count("(") != expr.count(")"):
        found.append("unbalanced parentheses")
    return found
