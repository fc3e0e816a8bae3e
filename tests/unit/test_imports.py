"""The house's layering: no import cycle among the product's modules, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PACKAGES = ("sentiment", "ingest", "stream", "model_api", "dashboard", "experiments", "benchmarks", "harness")


def imports_of(path: Path, module: str) -> set[str]:
    """The project modules that ``module`` imports anywhere in its file (functions included)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports only for type annotations (``if TYPE_CHECKING:``) never run: they make no cycle.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def graph() -> dict[str, set[str]]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return {name: {m for m in imports_of(path, name) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_project():
    edges = graph()
    assert "model_api.front.worker" in edges["model_api.front.asgi"]  # lazy imports are seen
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_the_app_needs_neither_torch_nor_the_model_process():
    edges = graph()
    for http in ("model_api.front.app", "model_api.front.routes"):
        assert not edges[http] & {
            "model_api.runner.engine_process",
            "model_api.runner.pool",
            "model_api.model.predictor",
            "model_api.runner.runtime",
        }


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


ROOMS = ("front", "runner", "model")  # model_api's rooms, top to bottom


def room_of(module: str) -> int | None:
    parts = module.split(".")
    return ROOMS.index(parts[1]) if len(parts) > 2 and parts[0] == "model_api" and parts[1] in ROOMS else None


def test_the_service_rooms_import_downwards_only():
    # front (HTTP) -> runner (model processes, batching, swaps) -> model (predictor, engines).
    edges = graph()
    rooms = {m: room_of(m) for m in edges if room_of(m) is not None}
    assert set(rooms.values()) == {0, 1, 2}
    upward = sorted(f"{m} -> {t}" for m in rooms for t in edges[m] if t in rooms and rooms[t] < rooms[m])
    assert not upward, upward
    # Every module of the service is in a room but its commands (python -m model_api[.X]).
    loose = {m for m in edges if m.startswith("model_api") and m not in rooms} - {"model_api", "model_api.front"}
    assert loose == {
        "model_api.__main__",
        "model_api.build_engine",
        "model_api.healthcheck",
        "model_api.rollout",
        "model_api.runner",
        "model_api.model",
    }


def test_the_http_modules_do_not_pull_the_model_stack_in():
    # Only the worker (model_api/front/worker.py) joins the routes to the model runtime; the server
    # adapters (asgi, wsgi) call it from their ``create``.
    edges = graph()
    model_stack = {"model_api.runner.runtime", "model_api.runner.pool", "model_api.runner.engine_process"}
    model_stack |= {m for m in edges if m.startswith("model_api.model.") and m != "model_api.model.locations"}
    assert "model_api.model.predictor" in model_stack
    http = [
        m for m in edges if m.startswith("model_api.front.") and m.rpartition(".")[2] not in ("worker", "asgi", "wsgi")
    ]
    http += ["model_api.runner.swap", "model_api.runner.model_share", "model_api.front"]
    for module in http:
        pulled = reachable(edges, module) & model_stack
        assert not pulled, f"{module} imports {sorted(pulled)}"


def longest_chain(edges: dict[str, set[str]], inside: str) -> list[str]:
    """The longest chain of imports among the modules of package ``inside`` (the graph has no cycle)."""
    members = {m for m in edges if m.startswith(inside + ".")}
    best: dict[str, list[str]] = {}

    def chain(node: str) -> list[str]:
        if node not in best:
            below = [chain(m) for m in sorted(edges[node] & members)]
            best[node] = [node, *max(below, key=len, default=[])]
        return best[node]

    return max((chain(m) for m in sorted(members)), key=len)


def test_the_longest_chain_finder_follows_the_deepest_path():
    edges = {"p.a": {"p.b", "p.c"}, "p.b": {"p.c"}, "p.c": {"q.x"}, "q.x": set()}
    assert longest_chain(edges, "p") == ["p.a", "p.b", "p.c"]


def test_the_model_service_is_at_most_six_modules_deep():
    # The HTTP layer, the worker that joins it to the model, the model runtime and engines: a
    # reader follows any request or any model load through at most six modules of model_api/.
    chain = longest_chain(graph(), "model_api")
    assert len(chain) <= 6, " -> ".join(chain)


# What experiments/ and benchmarks/ may take from the model service: the predictor (which loads a
# model with its engine) and the engine module where they measure or choose engines; benchmarks
# also serve the HTTP front with a stub model (benchmarks/http_layer.py).
PUBLIC_MODEL_API = {
    "experiments": {"model_api.model.predictor", "model_api.model.engines"},
    "benchmarks": {
        "model_api.model.predictor",
        "model_api.model.engines",
        "model_api.front.asgi",
        "model_api.front.routes",
    },
}


@pytest.mark.parametrize("package", sorted(PUBLIC_MODEL_API))
def test_experiments_and_benchmarks_use_the_predictors_public_surface(package):
    edges = graph()
    reached = {
        f"{module} -> {target}"
        for module, targets in edges.items()
        if module.split(".")[0] == package
        for target in targets
        if target.startswith("model_api.") and target not in PUBLIC_MODEL_API[package]
    }
    assert not reached, sorted(reached)
