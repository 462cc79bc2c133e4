"""issue 12: no import circle inside distill/ (e.g. tb.py <-> trainer.py), counting the imports
inside functions too; imports under `if TYPE_CHECKING:` do not run and do not count."""
from __future__ import annotations

import ast
from pathlib import Path

import distill_rvc.distill as distill

FOLDER = Path(distill.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules `path` imports at run time (`from .x import`, `from . import x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for sub in node.body for n in ast.walk(sub)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in typing_only:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return {name for name in found if (FOLDER / f"{name}.py").is_file()}


def test_distill_modules_import_no_circle():
    graph = {p.stem: _imports(p) for p in FOLDER.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert graph["tb"] >= {"evaluate"} and graph["trainer"] >= {"tb", "evaluate", "train_state"}
    assert not circles, {m: sorted(graph[m]) for m in circles}
