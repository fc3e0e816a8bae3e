import pytest

from ingest.replay import replay_tweets
from sentiment.sentiment140 import ReadStats

pytestmark = pytest.mark.unit

ROWS = (
    '"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","a","I hate Mondays"\n'
    '"4","2","Mon Apr 06 22:19:46 PDT 2009","NO_QUERY","b","coffee is great"\n'
    "garbage line\n"
    '"4","3","Mon Apr 06 22:19:47 PDT 2009","NO_QUERY","c","More COFFEE please"\n'
)


@pytest.fixture
def csv_file(tmp_path):
    f = tmp_path / "tweets.csv"
    f.write_text(ROWS)
    return f


def test_replays_every_well_formed_row(csv_file):
    stats = ReadStats()
    tweets = list(replay_tweets(csv_file, stats=stats))
    assert [t.id for t in tweets] == ["1", "2", "3"]
    assert tweets[0].created_at == "2009-04-07T05:19:45Z"
    assert stats.malformed == 1


def test_track_is_case_insensitive_and_sets_keyword(csv_file):
    tweets = list(replay_tweets(csv_file, track=["coffee"]))
    assert [t.id for t in tweets] == ["2", "3"]
    assert {t.keyword for t in tweets} == {"coffee"}


def test_loop_and_limit_give_unique_ids(csv_file):
    tweets = list(replay_tweets(csv_file, loop=True, limit=7))
    ids = [t.id for t in tweets]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert ids[3:6] == ["1~1", "2~1", "3~1"]


def test_loop_with_no_match_fails_clearly(csv_file):
    with pytest.raises(ValueError, match="no tweet matches"):
        list(replay_tweets(csv_file, track=["tea"], loop=True, limit=5))


def test_text_only_rows_get_ids(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("polarity,text\n0,one\n4,two\n")
    tweets = list(replay_tweets(f))
    assert [t.id for t in tweets] == ["t:2", "t:3"]
    assert all(t.created_at.endswith("Z") for t in tweets)
