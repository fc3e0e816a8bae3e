import pytest

from sentiment.cleaning import LIGHT, SEED, clean_text, get_recipe, normalise

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@switchfoot http://twitpic.com/2y1zl - Awww, that's a bummer.", "awww that s a bummer"),
        ("Loving the #SunnyDay today!!", "loving the sunnyday today"),
        ("I &lt;3 you &amp; me", "i you me"),
        ("&quot;quoted&quot; text", "quoted text"),
        ("visit www.example.com/x?y=1 NOW", "visit now"),
        ("HTTPS://T.CO/abc is a link", "is a link"),
        ("email me at bob@example.com", "email me at bob com"),
        ("numbers 123 and   spaces\t\nhere", "numbers and spaces here"),
        ("caf\u00e9 na\u00efve \U0001f600 ok", "caf na ve ok"),
        ("@only_a_mention", ""),
        ("", ""),
    ],
)
def test_seed_recipe(raw, expected):
    assert clean_text(raw) == expected


def test_seed_is_idempotent():
    text = "@a Hello #World http://x.y &amp; 42 times!"
    once = clean_text(text)
    assert clean_text(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@switchfoot http://twitpic.com/2y1zl - Awww, that's a bummer.", "@user http - Awww, that's a bummer."),
        ("I &lt;3 you &amp; me", "I <3 you & me"),
        ("&amp;lt; stays one level", "&lt; stays one level"),
        ("  many   spaces\there  ", "many spaces here"),
        ("#Hashtag kept WITH case", "#Hashtag kept WITH case"),
    ],
)
def test_light_recipe(raw, expected):
    assert normalise(raw, "light") == expected


def test_unknown_recipe_names_the_choices():
    with pytest.raises(ValueError, match="light.*seed"):
        get_recipe("heavy")


def test_recipes_use_only_literal_replacements():
    for recipe in (SEED, LIGHT):
        for _, replacement in recipe.steps:
            assert "\\" not in replacement and "$" not in replacement
