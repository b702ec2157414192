"""The README is a first screen and a map; the docs hold the depth, and every link in them works.

What a reader notices: the set-up commands are on the first screen, the README stays short, no
link or anchor in README.md and docs/*.md leads nowhere, every `make` target they name exists,
and every test they cite as proof is still there under that name.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FIRST_SCREEN = 40
MAX_LINES = 300

LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(path: Path) -> list[str]:
    """The lines outside fenced code blocks (a `#` there is a comment, not a heading)."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose(path):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def links(path: Path) -> list[str]:
    return [m.group(1) for line in prose(path) for m in LINK.finditer(line)]


def test_slug_matches_github_for_the_headings_this_repository_uses() -> None:
    assert slug("The drill: `make drill`") == "the-drill-make-drill"
    assert slug("Preflight: before the first `make deploy`") == "preflight-before-the-first-make-deploy"
    assert slug("What `make local` cannot show") == "what-make-local-cannot-show"
    assert slug("A remote checker's own errors") == "a-remote-checkers-own-errors"


def test_the_first_screen_says_what_it_is_and_gives_the_two_set_up_commands() -> None:
    first = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    assert first.startswith("# "), "the README starts with the product's name"
    # The first command, then the second: make local with no AWS account, make deploy with one.
    for command in ("make test", "make local", "make deploy"):
        assert re.search(rf"^{command}\b", first, re.M), f"{command!r} is not a command line in the first screen"
    assert "no AWS account" in first


def test_the_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move the depth to docs/ (at most {MAX_LINES})"


def test_the_readme_links_every_page_of_the_docs() -> None:
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_make_command_the_docs_name_is_a_target() -> None:
    targets = makefile_targets()
    named = {
        (page.relative_to(ROOT), target)
        for page in PAGES
        for target in re.findall(r"`make ([a-z][a-z-]*)", page.read_text())
    }
    unknown = sorted(f"{page}: make {target}" for page, target in named if target not in targets)
    assert not unknown, unknown
    # A target a reader would look for is in the README, or in the docs page it links.
    if "mutation" in targets:
        assert "make mutation" in README.read_text()


def test_every_test_cited_as_proof_exists() -> None:
    """`test_file.py::test_name` in the docs (a `*`, or a trailing `...`, for the rest of the name)
    names a test that is still there."""
    missing = []
    for page in PAGES:
        current = ""
        for cell in re.findall(r"`[^`]*::[^`]*`", page.read_text()):
            match = re.match(r"`(?:tests/)?(test_\w+\.py)?::(test_[\w*]+)(\.\.\.)?", cell)
            if not match:
                continue
            file = current = match.group(1) or current
            assert file, f"{page.relative_to(ROOT)}: {cell} names no test file before it"
            names = re.findall(r"^\s*(?:async )?def (test_\w+)", (ROOT / "tests" / file).read_text(), re.M)
            pattern = match.group(2) + ("*" if match.group(3) else "")  # `name...`: a prefix
            if not fnmatch.filter(names, pattern):
                missing.append(f"{page.relative_to(ROOT)}: {file}::{pattern}")
    assert not missing, missing
