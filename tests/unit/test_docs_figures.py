"""A figure stated in more than one doc agrees with its home: docs/performance.md (with its dated
record, docs/performance-history.md) for speeds and goals, docs/experiments.md (or performance.md)
for the models' accuracy.

What is checked, simply, by the words around a number (README.md, docs/*.md, output/ and docker/ READMEs):

- the README's figures (tweets/s, requests/s, %, ×) are all in docs/performance.md, which it links to;
- an accuracy (a percentage within a few words of "accuracy") is one of those measured in
  docs/experiments.md or docs/performance.md;
- a speed ratio (``2.69×``) is one measured in docs/performance.md or docs/experiments.md;
- a goal (``>= 1,000 tweets/s``, ``<= 300 ms``) is one of the goals of docs/performance.md.

Figures that are another doc's own measurement (docs/serving.md's latency budget, docs/scaling.md's
arithmetic) are not required to be repeated in performance.md; only those kinds above are.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "output" / "README.md"]
DOCS.append(ROOT / "docker" / "README.md")
NUMBER = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
UNIT = r"(tweets/s|tweets per second|req/s|requests/s|requests per second|%|×)"
FIGURE = re.compile(rf"(?<![\w.,]){NUMBER} ?{UNIT}")
PERCENT = re.compile(rf"(?<![\w.,]){NUMBER} ?%")
# "2.69×", "2.69 times" (a whole number before "times" is a count: "2009 times", "12 times").
RATIO = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?(?= ?×)|\d+\.\d+(?= times\b))")
GOAL = re.compile(rf"(?:≥|>=|≤|<=) ?{NUMBER} ?(tweets/s|req/s|requests/s|ms|s)\b")
ACCURACY = re.compile(r"accuracy", re.IGNORECASE)
NEAR = 60  # characters either side of "accuracy" that a percentage may be in to be an accuracy


def text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def performance() -> str:
    """The home of speeds and goals: docs/performance.md and its dated record of past runs."""
    return text("docs/performance.md") + text("docs/performance-history.md")


def figure(number: str, unit: str) -> tuple[float, str]:
    """A figure as a comparable pair: ``1,300 tweets per second`` and ``1300 tweets/s`` are the same."""
    unit = {"tweets per second": "tweets/s", "req/s": "requests/s", "requests per second": "requests/s"}.get(unit, unit)
    return float(number.replace(",", "")), unit


def figures(doc: str) -> set[tuple[float, str]]:
    return {figure(*m.groups()) for m in FIGURE.finditer(doc)}


def accuracies(doc: str) -> set[float]:
    """Percentages within :data:`NEAR` characters of the word "accuracy"."""
    found = set()
    for m in ACCURACY.finditer(doc):
        window = doc[max(0, m.start() - NEAR) : m.end() + NEAR]
        found |= {float(p.group(1).replace(",", "")) for p in PERCENT.finditer(window)}
    return found


def goals(doc: str) -> set[tuple[float, str]]:
    return {figure(*m.groups()) for m in GOAL.finditer(doc)}


def each_doc():
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in DOCS]


def test_the_readme_states_only_figures_of_docs_performance():
    readme, measured = figures(text("README.md")), figures(performance())
    assert readme, "the README states no figure: this check would check nothing"
    assert sorted(readme - measured) == []


def test_every_accuracy_is_one_measured_in_the_experiments_or_performance_docs():
    measured = {f for f, unit in figures(text("docs/experiments.md") + performance()) if unit == "%"}
    stated = {(name, a) for name, doc in each_doc() for a in accuracies(doc)}
    assert len(stated) > 3
    assert sorted((name, a) for name, a in stated if a not in measured) == []


def test_every_speed_ratio_is_one_measured_in_the_performance_or_experiments_docs():
    measured = {float(m.group(1)) for m in RATIO.finditer(performance() + text("docs/experiments.md"))}
    stated = {(name, float(m.group(1).replace(",", ""))) for name, doc in each_doc() for m in RATIO.finditer(doc)}
    assert stated
    assert sorted((name, r) for name, r in stated if r not in measured) == []


def test_every_goal_is_a_goal_of_docs_performance():
    home = goals(performance())
    assert (1000.0, "tweets/s") in home and (300.0, "ms") in home
    elsewhere = sorted((name, g) for name, doc in each_doc() for g in goals(doc) if g not in home)
    assert elsewhere == []


@pytest.mark.parametrize(
    ("doc", "check"),
    [
        (
            "2.0× slower, 2.69 times the tweets, 12 times a day, in 2009 times",
            lambda d: [float(m.group(1)) for m in RATIO.finditer(d)] == [2.0, 2.69],
        ),
        ("Goal: >= 1,300 tweets/s.", lambda d: goals(d) == {(1300.0, "tweets/s")}),
        ("It reaches 84.15% test accuracy; 12% are Neutral.", lambda d: accuracies(d) == {84.15, 12.0}),
        ("1,612.5 tweets per second, 494 req/s", lambda d: figures(d) == {(1612.5, "tweets/s"), (494.0, "requests/s")}),
    ],
)
def test_the_figures_are_read_as_written(doc, check):
    assert check(doc)
