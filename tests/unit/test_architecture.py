"""The package's import graph, read from its source: no module imports itself back, not even through an import
inside a function (the usual way to dodge a cycle), so cycles cannot come back unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "translate"


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package by its ``__init__``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _entry_point_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` (runs only as a script) or ``if TYPE_CHECKING:`` (never at run time)."""
    return isinstance(node, ast.If) and any(text in ast.unparse(node.test) for text in ("__main__", "TYPE_CHECKING"))


def imported(node: ast.AST, known: dict[str, Path], package: str) -> set[str]:
    """The package's modules an import statement names: ``from a import b`` is module ``a.b`` when there is one,
    else ``a``; relative imports resolved against ``package``."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body (module level or inside functions)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        stack = list(ast.iter_child_nodes(ast.parse(path.read_text())))
        while stack:
            node = stack.pop()
            if _entry_point_block(node):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= imported(node, known, package)
            stack.extend(ast.iter_child_nodes(node))
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_even_through_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "translate.config.compose" in graph["translate.training.loop"]  # module-level edges are read
    assert "translate.loading.generator" in graph["translate.loading.load"]  # and those inside functions


def test_no_module_is_named_after_a_standard_library_one():
    import sys

    names = {path.stem for path in PACKAGE.rglob("*.py")} | {path.name for path in PACKAGE.rglob("*") if path.is_dir()}
    assert sorted(names & set(sys.stdlib_module_names)) == []


# ------------------------------------------------------------------------------------------ the map by area
ARCHITECTURE = PACKAGE.parent / "docs" / "develop" / "architecture.md"
# Imports a function may make: optional or heavy dependencies, imported when their feature runs (the page lists
# them), and the one deferred import of the package's own that keeps Hydra out of loading a model folder.
OPTIONAL = ("starlette", "uvicorn", "matplotlib", "onnx", "openvino", "nncf", "wandb", "torch.utils.tensorboard",
            "torchmetrics.image", "sklearn")
DEFERRED = {("translate.loading.load", "translate.loading.generator")}


def area_map() -> dict[str, set[str]]:
    """Area -> the areas it may import, from the table under "## Areas" of the architecture page."""
    table = ARCHITECTURE.read_text().split("## Areas", 1)[1]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "`translate/" in line]
    areas = {}
    for name, folder, _, allowed in rows:
        assert folder.strip() == f"`translate/{name.strip()}/`", folder
        areas[name.strip()] = {a.strip() for a in allowed.split(",")} - {"—"}
    return areas


def area_of(module: str) -> str:
    """The area a module belongs to; the package's own ``__init__`` and ``__main__`` are its front, ``translate``."""
    return module.split(".")[1] if module.count(".") and module != "translate.__main__" else "translate"


def area_imports(graph: dict[str, set[str]]) -> set[tuple[str, str, str]]:
    """(area, imported area, example edge) for every import that crosses areas."""
    return {(area_of(a), area_of(b), f"{a} -> {b}") for a, imports in graph.items() for b in imports
            if area_of(a) != area_of(b)}


def test_the_package_is_its_areas_and_each_imports_only_what_the_map_allows():
    areas = area_map()
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(areas)
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]  # nothing else loose
    for area, allowed in areas.items():
        assert allowed <= set(areas), (area, allowed - set(areas))
    wrong = sorted(edge for a, b, edge in area_imports(import_graph())
                   if a != "translate" and b not in areas[a])
    assert wrong == []
    assert {b for a, b, _ in area_imports(import_graph()) if a == "translate"} == {"core", "loading", "apps"}


def test_the_map_check_finds_an_import_the_map_does_not_allow():
    graph = {"translate.core.errors": {"translate.training.loop"}, "translate.training.loop": set()}
    assert area_imports(graph) == {("core", "training", "translate.core.errors -> translate.training.loop")}
    assert "training" not in area_map()["core"]


def imports_inside_functions() -> list[tuple[str, str]]:
    """(module, imported name) of every import statement inside a function of the package."""
    found = []
    for name, path in modules().items():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [(name, node.module if isinstance(node, ast.ImportFrom) else alias.name)
                          for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))
                          for alias in node.names]
    return found


def test_imports_inside_functions_are_only_of_optional_dependencies():
    found = imports_inside_functions()
    assert [(m, n) for m, n in found if not n.startswith(OPTIONAL) and (m, n) not in DEFERRED] == []
    assert DEFERRED <= set(found)  # the exception is still needed, else it goes
    page = ARCHITECTURE.read_text()
    assert all(f"`{name}`" in page for name in OPTIONAL)
