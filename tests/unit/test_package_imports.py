"""The product's packages import neither the benchmarks nor the experiments, the Spark job reaches
the model service only over HTTP and the spool only through its format in ``sentiment/``, and the
tests and the benchmarks share only the harness (``harness/``), which imports neither: read from
every module's imports, without running it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ingest", "stream", "model_api", "sentiment", "dashboard")
NOT_FOR_PRODUCT = {"benchmarks", "experiments", "harness", "tests"}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every module that ``path`` imports, wherever the import stands
    (module level, inside a function, under ``if TYPE_CHECKING``); relative imports are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imports_by_module(package: str) -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT)): imported_packages(path) for path in sorted((ROOT / package).rglob("*.py"))}


def test_imported_packages_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os.path\nfrom experiments.data import load_split\nfrom . import sibling\n"
        "def f():\n    import benchmarks.pipeline as p\n    return p\n"
    )
    assert imported_packages(module) == {"os", "experiments", "benchmarks"}


@pytest.mark.parametrize("package", PRODUCT)
def test_product_never_imports_benchmarks_or_experiments(package: str) -> None:
    offending = {
        module: sorted(names & NOT_FOR_PRODUCT)
        for module, names in imports_by_module(package).items()
        if names & NOT_FOR_PRODUCT
    }
    assert offending == {}, f"product modules import benchmarks/ or experiments/: {offending}"


def test_stream_reaches_the_model_service_only_over_http() -> None:
    offending = [module for module, names in imports_by_module("stream").items() if "model_api" in names]
    assert offending == [], f"stream/ modules import model_api (call it over HTTP instead): {offending}"


def test_stream_reads_the_spool_through_its_format_not_the_relay() -> None:
    offending = [module for module, names in imports_by_module("stream").items() if "ingest" in names]
    assert offending == [], f"stream/ modules import ingest/ (use sentiment.spool_format instead): {offending}"


def is_a_benchmarks_own_test(module: str) -> bool:
    """``tests/unit/test_bench_<name>.py`` tests a benchmark itself, so it alone may import it."""
    return Path(module).name.startswith("test_bench_")


def test_no_test_imports_the_benchmarks() -> None:
    offending = {
        module: sorted(names & {"benchmarks"})
        for module, names in imports_by_module("tests").items()
        if "benchmarks" in names and not is_a_benchmarks_own_test(module)
    }
    assert offending == {}, f"tests import benchmarks/ (use harness/ instead): {offending}"


def test_the_harness_imports_neither_the_tests_nor_the_benchmarks() -> None:
    offending = {
        module: sorted(names & {"benchmarks", "tests"})
        for module, names in imports_by_module("harness").items()
        if names & {"benchmarks", "tests"}
    }
    assert offending == {}, f"harness/ imports the tests or the benchmarks (they import it): {offending}"
    benchmarks = {module for module, names in imports_by_module("benchmarks").items() if "tests" in names}
    assert benchmarks == set(), f"benchmarks import the tests (use harness/): {sorted(benchmarks)}"
