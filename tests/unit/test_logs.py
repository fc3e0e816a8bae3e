"""Logging is set up in one place, :func:`sentiment.logs.setup_logging`, and by every entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ingest", "stream", "model_api", "sentiment", "dashboard", "experiments", "benchmarks")


def calls(path: Path) -> set[str]:
    """The names of the functions ``path`` calls (``f(...)`` and ``obj.f(...)`` both give ``f``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def modules() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def is_entry_point(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return 'if __name__ == "__main__":' in text or (path.name == "__main__.py" and "def main(" in text)


def test_only_sentiment_logs_configures_logging() -> None:
    offending = [str(p.relative_to(ROOT)) for p in modules() if "basicConfig" in calls(p)]
    assert offending == [str(Path("sentiment") / "logs.py")]


def test_every_entry_point_sets_up_logging() -> None:
    entry_points = [p for p in modules() if is_entry_point(p)]
    assert entry_points, "no entry point found"
    missing = [str(p.relative_to(ROOT)) for p in entry_points if "setup_logging" not in calls(p)]
    assert missing == [], f"entry points that do not call sentiment.logs.setup_logging(): {missing}"
