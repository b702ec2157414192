"""Reading the pip-compile --generate-hashes locks, and checking one against what it must hold."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a pip-compile --generate-hashes lock."""
    text = path.read_text().replace("\\\n", " ")
    return {
        canonicalize_name(m.group(1)): (m.group(2), m.group(3).count("--hash=sha256:"))
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)((?: +--hash=sha256:[0-9a-f]{64})*)", text, re.M)
    }


def pins(path: Path) -> dict[str, str]:
    """The `name==version` pins of a requirements file, following its `-r` includes."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found |= pins(path.parent / line[3:].strip())
        elif "==" in line:
            name, version = line.split("==")
            found[canonicalize_name(name.split("[")[0])] = version
    return found


def assert_fully_resolved(lock: Path, requirements: Path) -> None:
    """Every package hashed; the pins at their versions; and exactly the packages they need
    (read from what is installed here, at the same versions), so pip resolves nothing itself."""
    content = locked(lock)
    assert all(hashes for _, hashes in content.values()), content
    direct = pins(requirements)
    assert {name: content[name][0] for name in direct} == direct
    needed: set[str] = set()
    todo = list(direct)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        assert metadata.version(name) == content[name][0], name
        for requirement in map(Requirement, metadata.requires(name) or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    assert needed == set(content)
