"""What `make mutation` prints after mutmut's run: per module the mutants killed, survived and
timed out, then every survivor with its diff (docs/testing.md).

mutmut keeps each module's results in mutants/<module>.py.meta (JSON: the exit code of each
mutant's test run) and prints only a running total; `mutmut show` prints one diff at a time.
Run from the repository root, after `mutmut run`, with mutmut installed (requirements-mutation.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

MUTANTS = Path("mutants")

# mutmut 3's exit codes (mutmut/stats.py status_by_exit_code), folded into what this report counts:
# a test run that failed killed the mutant; one stopped for running too long timed out.
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}
NOT_RUN = {None}
COLUMNS = ("killed", "timeout", "survived", "no tests", "other")


def status(exit_code: int | None) -> str:
    for name, codes in (
        ("killed", KILLED),
        ("timeout", TIMEOUT),
        ("survived", SURVIVED),
        ("no tests", NO_TESTS),
        ("not run", NOT_RUN),
    ):
        if exit_code in codes:
            return name
    return "other"


def results(root: Path = MUTANTS) -> dict[str, dict[str, str]]:
    """Module path (as listed in [tool.mutmut] only_mutate) -> mutant name -> status."""
    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[module] = {name: status(code) for name, code in codes.items()}
    return out


def table(by_module: dict[str, dict[str, str]]) -> list[str]:
    """One line per module and a total: each column's count, then killed and caught (killed or
    timed out) as a share of all mutants."""
    lines = [f"{'module':32} {'mutants':>7} " + " ".join(f"{c:>8}" for c in COLUMNS) + "  killed  caught"]
    total: Counter[str] = Counter()
    for module, statuses in [*by_module.items(), ("total", {})]:
        counts = Counter(statuses.values()) if module != "total" else total
        if module != "total":
            total.update(counts)
        n = sum(counts.values())
        if not n:
            continue
        other = n - sum(counts[c] for c in COLUMNS[:-1])
        cells = [counts[c] for c in COLUMNS[:-1]] + [other]
        killed = counts["killed"] / n
        caught = (counts["killed"] + counts["timeout"]) / n
        row = f"{module:32} {n:>7} " + " ".join(f"{c:>8}" for c in cells) + f"  {killed:6.1%}  {caught:6.1%}"
        lines.append(row)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-diffs", action="store_true", help="the counts only")
    args = parser.parse_args(argv)
    everything = results()
    # A run of some modules only (make mutation MUTANTS=...) leaves the others' mutants not run.
    by_module = {m: {n: s for n, s in st.items() if s != "not run"} for m, st in everything.items()}
    by_module = {m: st for m, st in by_module.items() if st}
    not_run = sum(len(st) for st in everything.values()) - sum(len(st) for st in by_module.values())
    if not by_module:
        print("no results under mutants/: run `make mutation` first", file=sys.stderr)
        return 2
    print("\n".join(table(by_module)))
    if not_run:
        print(f"({not_run} mutants of the other modules not run: make mutation without MUTANTS runs them all)")
    survivors = [name for statuses in by_module.values() for name, s in statuses.items() if s in ("survived", "other")]
    print(f"\n{len(survivors)} survivors (and mutants with another outcome)")
    if args.no_diffs:
        return 0
    # mutmut's own diff of each (the mutant beside the function it was made from); imported here
    # so that the counts above need only the JSON.
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    for module, statuses in by_module.items():
        for name, s in statuses.items():
            if s in ("survived", "other"):
                print(f"\n# {name}: {s}")
                print(get_diff_for_mutant(name, path=module))
    return 0


if __name__ == "__main__":
    sys.exit(main())
