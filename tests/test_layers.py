"""The import graph of rtvault, every import that runs counted (function-level ones too; those under
`if TYPE_CHECKING:`, for annotations only, never run): no module cycle, and the layers of docs/source-code.md
imported one way only."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Lower numbers may import higher ones (and their own layer), never the reverse.
LAYERS = {"cli": 0, "web": 0, "__main__": 0, "jobs": 1, "copies": 1, "demo": 1, "configured": 2, "catalog": 3,
          "archive": 3, "store": 3, "dicom": 3, "pinnacle": 4, "config": 4, "errors": 4, "events": 4, "report": 4,
          "utc": 4,
          "localfile": 4, "": 4}
FORBIDDEN = {("copies", "jobs")}  # side by side, but copies/ is what jobs/ orchestrate


def _graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (SRC / "rtvault").rglob("*.py")}

    def resolve(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and ast.unparse(node.test).endswith("TYPE_CHECKING") for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtvault"):
                found |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {resolve(alias.name) for alias in node.names if alias.name.startswith("rtvault")}
        graph[name] = found - {name}
    return graph


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_layers_are_imported_one_way_only() -> None:
    wrong = [f"{m} imports {d}" for m, deps in _graph().items() for d in deps
             if LAYERS[_part(d)] < LAYERS[_part(m)] or (_part(m), _part(d)) in FORBIDDEN]
    assert not wrong, wrong


def test_no_module_imports_itself_through_others() -> None:
    graph = _graph()
    cycles = []
    for start in graph:
        seen, todo = set(), [(start, (start,))]
        while todo:
            module, path = todo.pop()
            for dep in graph[module]:
                if dep == start:
                    cycles.append(" -> ".join((*path, dep)))
                elif dep not in seen:
                    seen.add(dep)
                    todo.append((dep, (*path, dep)))
    assert not cycles, cycles
