"""Every relative link in the README, the docs and the results pages points at a file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> list[str]:
    """The link targets of a Markdown page that are paths in the repository (no URLs, no in-page anchors)."""
    return [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    missing = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_link_reader_sees_relative_links_and_skips_urls(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[a](docs/x.md#part) [b](https://example.org/y.md) [c](#anchor) ![d](results/p.png)")
    assert relative_links(page) == ["docs/x.md", "results/p.png"]
