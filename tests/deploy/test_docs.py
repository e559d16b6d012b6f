"""The repository documents itself: every link in the Markdown resolves inside the repo, and the design pages
the README promises exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.chart import REPO

DOCS = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "deploy" / "README.md", *(REPO / "docs").rglob("*.md")]
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def broken_links(doc: Path) -> list[str]:
    problems = []
    text = doc.read_text()
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address or mailto: not checked offline
        path_part, _, anchor = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc
        if REPO not in resolved.parents and resolved != REPO:
            problems.append(f"{target}: outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            problems.append(f"{target}: no heading #{anchor}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve_inside_the_repository(doc: Path) -> None:
    assert not broken_links(doc), broken_links(doc)


def test_the_link_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = REPO / "docs" / "README.md"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "[x](../../shared/ARCHITECTURE.md) [y](nope.md)")
    assert len(broken_links(doc)) == 2


def test_the_readme_points_into_docs_not_outside() -> None:
    readme = (REPO / "README.md").read_text()
    assert "ARCHITECTURE.md" not in readme and "../shared" not in readme
    for page in ("docs/architecture.md", "docs/design/ownership-and-fencing.md", "docs/design/durability.md"):
        assert f"]({page})" in readme, f"README should link {page}"
    assert "](CONTRIBUTING.md)" in readme


def test_the_design_pages_exist_and_carry_the_current_design() -> None:
    for page in ("architecture.md", "design/module-boundaries.md", "design/durability.md", "targets.md"):
        assert (REPO / "docs" / page).is_file(), page
    assert len(list((REPO / "docs" / "runbooks").glob("*.md"))) >= 5
    architecture = (REPO / "docs" / "architecture.md").read_text()
    # The revisions made after the first wave are the design now, not a wish list.
    for revision in ("etcd outage", "outbox", "idle stations first", "Nothing already read", "2.0.1"):
        assert revision in architecture, f"docs/architecture.md does not describe: {revision}"
    contributing = (REPO / "CONTRIBUTING.md").read_text()
    for loop in ("tests/unit", "tests/integration", "tests/cluster", "tests/deploy", "bash tests/run.sh"):
        assert loop in contributing, f"CONTRIBUTING.md lacks the inner loop for {loop}"
