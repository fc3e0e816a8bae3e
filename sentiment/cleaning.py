"""Tweet text normalisation, defined once and applied by Python and by Spark SQL alike.

Each recipe is an ordered tuple of regex substitutions written in the common subset of Python's
``re`` and Java's ``java.util.regex`` (explicit ASCII classes, no ``\\w``/``\\s``/``(?i)``, whose
meaning differs between the two), followed by an optional lower-casing and trimming. Python applies
the steps with :func:`re.sub`; the Spark job turns the same steps into a chain of
``regexp_replace`` expressions (see ``stream/cleaning.py``), so the two cannot drift apart.

Recipes:

* ``seed``: HTML entities, URLs and @mentions removed, hashtags kept (``#happy`` becomes
  ``happy``), every character outside ``A-Z a-z`` removed, lower-cased, whitespace collapsed.
* ``light``: HTML entities decoded for the few that occur in tweets, mentions replaced by
  ``@user``, URLs by ``http``, whitespace collapsed; case and punctuation kept, as a BERT
  tokenizer expects.

HTML entities: in the ``seed`` recipe every entity decodes to a non-letter (``&lt;3`` is ``<3``,
``&amp;`` is ``&``), which the next step removes, so an entity is replaced by a space outright.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Java's \s is [ \t\n\x0B\f\r]; Python's str \s also matches Unicode spaces. Spell it out.
_SPACE = r"[ \t\n\x0B\f\r]"
_NOT_SPACE = r"[^ \t\n\x0B\f\r]"
_URL = r"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)" + _NOT_SPACE + "+"
_MENTION = r"@[A-Za-z0-9_]+"
_ENTITY = r"&(?:[A-Za-z]+|#[0-9]+|#[Xx][0-9A-Fa-f]+);"


@dataclass(frozen=True)
class Recipe:
    """An ordered list of ``(pattern, replacement)`` steps plus case folding.

    Replacements are literal strings (no group references), so they mean the same in both engines.
    """

    name: str
    steps: tuple[tuple[str, str], ...]
    lower: bool

    def __post_init__(self) -> None:
        for pattern, replacement in self.steps:
            re.compile(pattern)
            if "\\" in replacement or "$" in replacement:
                raise ValueError(f"recipe {self.name!r}: replacement {replacement!r} must be literal")


SEED = Recipe(
    name="seed",
    steps=(
        (_ENTITY, " "),
        (_URL, " "),
        (_MENTION, " "),
        (r"[^A-Za-z]+", " "),
        (r"^ +| +$", ""),
    ),
    lower=True,
)

LIGHT = Recipe(
    name="light",
    steps=(
        ("&quot;", '"'),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&#39;|&apos;", "'"),
        ("&amp;", "&"),
        (_URL, "http"),
        (_MENTION, "@user"),
        (_SPACE + "+", " "),
        (r"^ +| +$", ""),
    ),
    lower=False,
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (SEED, LIGHT)}
DEFAULT_RECIPE = SEED.name


def get_recipe(name: str) -> Recipe:
    """Return the recipe called ``name``.

    Raises:
        ValueError: if no recipe has that name.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown preprocessing {name!r}; expected one of {sorted(RECIPES)}") from None


def _compiled(recipe: Recipe) -> Callable[[str], str]:
    steps = [(re.compile(p), r) for p, r in recipe.steps]

    def apply(text: str) -> str:
        for pattern, replacement in steps:
            text = pattern.sub(replacement, text)
        return text.lower() if recipe.lower else text

    return apply


_APPLIERS: dict[str, Callable[[str], str]] = {name: _compiled(r) for name, r in RECIPES.items()}


def normalise(text: str, recipe: str = DEFAULT_RECIPE) -> str:
    """Apply the named recipe to one text."""
    if recipe not in _APPLIERS:
        get_recipe(recipe)
    return _APPLIERS[recipe](text)


def clean_text(text: str) -> str:
    """The seed recipe: what the Spark job stores as ``clean_text``."""
    return _APPLIERS[SEED.name](text)


def normalise_all(texts: Iterable[str], recipe: str = DEFAULT_RECIPE) -> list[str]:
    """Apply the named recipe to many texts."""
    get_recipe(recipe)
    apply = _APPLIERS[recipe]
    return [apply(t) for t in texts]
