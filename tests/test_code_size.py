"""Code a newcomer can carry on: no module over 450 lines, no function over 60 lines outside its
data (dict, list, set and tuple displays, strings and docstrings), in what ships and the tools.

KNOWN lists what is over today, at its size today: it may shrink, not grow, and an entry that is
back within the limit fails until it is removed, so the list stays the list of what is left.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("app.py", "cdk_app", "checker_lambda", "notifier", "service", "tools", "bench")
MODULE_LINES = 450
FUNCTION_LINES = 60

# path (a module's lines) or path::qualified.name (a function's lines outside its data) -> size today.
KNOWN = {
    # The alarms as data and their planner, one model (docs/alarms.md); its tests read it whole.
    "cdk_app/alarm_plan.py": 915,
    # Every context key's reading and validation, one place (STYLE.md: defaults and validation with the type).
    "cdk_app/config.py": 598,
}


def sources() -> list[Path]:
    out: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out


def _data_lines(node: ast.AST) -> set[int]:
    lines: set[int] = set()
    for n in ast.walk(node):
        data = isinstance(n, (ast.Dict, ast.List, ast.Set, ast.Tuple, ast.JoinedStr)) or (
            isinstance(n, ast.Constant) and isinstance(n.value, str)
        )
        if data and n.end_lineno is not None and n.end_lineno > n.lineno:
            lines |= set(range(n.lineno, n.end_lineno + 1))
    return lines


def function_sizes(tree: ast.Module) -> dict[str, int]:
    """Qualified name -> lines of each function (nested ones counted in their own and in the
    function around them), less the lines its data spans."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    span = set(range(child.lineno, (child.end_lineno or child.lineno) + 1))
                    sizes[name] = len(span - _data_lines(child))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return sizes


def measured() -> dict[str, int]:
    """Everything over a limit: path -> module lines, path::name -> function lines."""
    over: dict[str, int] = {}
    for path in sources():
        text = path.read_text()
        name = path.relative_to(ROOT).as_posix()
        if len(text.splitlines()) > MODULE_LINES:
            over[name] = len(text.splitlines())
        for function, size in function_sizes(ast.parse(text)).items():
            if size > FUNCTION_LINES:
                over[f"{name}::{function}"] = size
    return over


def test_no_module_or_function_over_its_limit_but_the_known_ones() -> None:
    new = {k: v for k, v in measured().items() if k not in KNOWN}
    assert not new, f"over {MODULE_LINES} lines a module or {FUNCTION_LINES} a function (split it): {new}"


def test_the_known_ones_only_shrink_and_leave_the_list_once_within_the_limit() -> None:
    over = measured()
    grown = {k: (KNOWN[k], over[k]) for k in KNOWN if k in over and over[k] > KNOWN[k]}
    assert not grown, (
        f"grew past their size in KNOWN (was, is): {grown}: split what grew, or, if that is the better "
        "trade, raise its number in KNOWN and say why in the commit"
    )
    # A shrink is written down, so the number cannot grow back unseen.
    shrunk = {k: (KNOWN[k], over[k]) for k in KNOWN if k in over and over[k] < KNOWN[k]}
    assert not shrunk, f"shrank (was, is): {shrunk}: lower its number in KNOWN to what it is now"
    done = [k for k in KNOWN if k not in over]
    assert not done, f"within the limits now: remove them from KNOWN in tests/test_code_size.py: {done}"


def test_the_measure_counts_code_not_data() -> None:
    code = "\n".join(f"    x{i} = {i}" for i in range(70))
    data = "\n".join(f"        {i}," for i in range(70))
    tree = ast.parse(f'def long():\n{code}\n\ndef table():\n    """Doc."""\n    return [\n{data}\n    ]\n')
    assert function_sizes(tree) == {"long": 71, "table": 2}
