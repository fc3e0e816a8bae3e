"""The Spark SQL cleaning and the Python cleaning give identical output on every tweet we have."""

import pytest
from pyspark.sql import functions as F

from sentiment.cleaning import RECIPES, normalise_all
from sentiment.sentiment140 import iter_rows
from stream.cleaning import recipe_column

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def all_texts(sentiment140_files):
    texts = [row.text for path in sentiment140_files for row in iter_rows(path)]
    # Edge cases the data may lack: Unicode spaces and letters, entities, odd URLs.
    texts += [
        "caf\u00e9\u00a0na\u00efve \u2028 \u017fs \u212a",
        "&#65;&#x42;&amp;amp;",
        "HtTp://A.b/c?d=e#f tail",
        "www.x.org",
        "@@double @_under_score",
        "\t\x0b\x0c\r\n",
        "",
        " #tag1 #Tag_2 ",
    ]
    return texts


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_spark_and_python_agree_on_every_tweet(spark, all_texts, recipe):
    df = spark.createDataFrame([(i, t) for i, t in enumerate(all_texts)], "i long, text string")
    rows = df.select("i", recipe_column(F.col("text"), RECIPES[recipe]).alias("clean")).collect()
    spark_out = {r["i"]: r["clean"] for r in rows}
    python_out = normalise_all(all_texts, recipe)
    mismatches = [
        (all_texts[i], spark_out[i], python_out[i]) for i in range(len(all_texts)) if spark_out[i] != python_out[i]
    ]
    assert len(spark_out) == len(all_texts)
    assert mismatches == [], f"{len(mismatches)} mismatches, e.g. {mismatches[:3]}"
