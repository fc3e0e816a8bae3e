"""The live relay against recorded X API v2 responses (no network)."""

import json
import logging
import threading
from pathlib import Path

import pytest
import requests
import responses
import tweepy
from responses import matchers

from ingest.twitter import Backoff, TwitterSetupError, poll_search, run_stream, search_query, sync_rules
from ingest.x_api import RedactToken, load_bearer_token

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twitter"
RULES = "https://api.twitter.com/2/tweets/search/stream/rules"
STREAM = "https://api.twitter.com/2/tweets/search/stream"
SEARCH = "https://api.twitter.com/2/tweets/search/recent"
TOKEN = "AAAAAAAAAAAAAAAAAAAAA-secret-bearer-token-0123456789"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def mock_rules(rsps):
    rsps.get(RULES, json=fixture("rules_existing.json"))
    rsps.post(
        RULES,
        json=fixture("rules_deleted.json"),
        match=[matchers.json_params_matcher({"delete": {"ids": ["1590000000000000003"]}})],
    )
    rsps.post(
        RULES,
        json=fixture("rules_added.json"),
        match=[matchers.json_params_matcher({"add": [{"value": "tea", "tag": "tweet-sentiment:tea"}]})],
    )


def test_token_comes_from_the_environment_or_a_file(tmp_path):
    assert load_bearer_token(env={"TWITTER_BEARER_TOKEN": f" {TOKEN}\n"}) == TOKEN
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert load_bearer_token(f, env={}) == TOKEN
    with pytest.raises(TwitterSetupError, match="set TWITTER_BEARER_TOKEN"):
        load_bearer_token(env={})


def test_redaction_scrubs_the_token_from_log_records():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "auth header Bearer %s failed", (TOKEN,), None)
    RedactToken(TOKEN).filter(record)
    assert TOKEN not in record.getMessage() and "***" in record.getMessage()


@responses.activate
def test_rules_sync_adds_missing_deletes_stale_and_leaves_others_alone():
    mock_rules(responses)
    changes = sync_rules(tweepy.StreamingClient(TOKEN), ["coffee", "tea"], lang=None, no_retweets=False)
    assert changes.added == ["tea"] and changes.deleted == ["dogs"] and changes.kept == ["tweet-sentiment:coffee"]
    posts = [c.request for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 2  # one delete (only our stale rule), one add; other apps' rules untouched
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in responses.calls)


def test_query_operators():
    assert search_query(["coffee", "green tea"], "en", True) == '(coffee OR "green tea") lang:en -is:retweet'


@responses.activate
def test_stream_relays_each_tweet_with_its_rule_keyword():
    mock_rules(responses)
    responses.get(STREAM, body=(FIXTURES / "stream.jsonl").read_text())
    got = []
    total = run_stream(TOKEN, ["coffee", "tea"], got.append, threading.Event(), max_connections=1)
    assert total == 3
    assert [(t.id, t.keyword, t.user) for t in got] == [
        ("1860000000000000001", "coffee", "alice_dev"),
        ("1860000000000000002", "tea", "bob"),
        ("1860000000000000003", "coffee", "chloe"),  # the other app's tag is skipped
    ]
    assert got[0].created_at == "2026-11-20T10:00:02Z"
    stream_call = next(c for c in responses.calls if c.request.url.startswith(STREAM + "?"))
    for field in ("created_at", "author_id", "lang", "username"):
        assert field in requests.utils.unquote(stream_call.request.url)


@responses.activate
def test_stream_reconnects_with_backoff_and_says_so(caplog):
    mock_rules(responses)
    responses.get(STREAM, body=requests.ConnectionError("reset by peer"))
    responses.get(STREAM, body=(FIXTURES / "stream.jsonl").read_text())
    delays = []
    backoff = Backoff(base=1.0, cap=60.0)
    with caplog.at_level(logging.WARNING, logger="ingest.twitter"):
        total = run_stream(
            TOKEN,
            ["coffee", "tea"],
            lambda t: None,
            threading.Event(),
            backoff=backoff,
            sleep=delays.append,
            max_connections=2,
        )
    assert total == 3
    assert len(delays) == 1 and 0.5 <= delays[0] <= 1.0
    assert "reconnecting in" in caplog.text
    assert TOKEN not in caplog.text


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    import random

    b = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [b.next() for _ in range(6)]
    for n, d in enumerate(delays):
        ceiling = min(8.0, 2**n)
        assert ceiling / 2 <= d <= ceiling


@responses.activate
def test_bad_token_is_a_clear_error_without_the_token(caplog):
    responses.get(RULES, json=fixture("error_401.json"), status=401)
    with pytest.raises(TwitterSetupError) as err:
        run_stream(TOKEN, ["coffee"], lambda t: None, threading.Event())
    assert "401" in str(err.value) and "TWITTER_BEARER_TOKEN" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


@responses.activate
def test_tier_without_the_stream_suggests_search_mode():
    responses.get(RULES, json=fixture("error_403_not_enrolled.json"), status=403)
    with pytest.raises(TwitterSetupError, match="client-not-enrolled.*--mode search"):
        run_stream(TOKEN, ["coffee"], lambda t: None, threading.Event())


@responses.activate
def test_search_polls_since_id_pages_and_waits_out_rate_limits(caplog):
    responses.get(
        SEARCH,
        json=fixture("search_page1.json"),
        match=[matchers.query_param_matcher({"query": "(coffee OR tea) -is:retweet"}, strict_match=False)],
    )
    responses.get(
        SEARCH,
        json=fixture("error_429.json"),
        status=429,
        headers={"x-rate-limit-reset": "4102444800", "x-rate-limit-remaining": "0"},
    )
    responses.get(
        SEARCH,
        json=fixture("search_newer_page1.json"),
        match=[matchers.query_param_matcher({"since_id": "1860000000000000102"}, strict_match=False)],
    )
    responses.get(
        SEARCH,
        json=fixture("search_newer_page2.json"),
        match=[matchers.query_param_matcher({"next_token": "c37w90d20art9p4gs6"}, strict_match=False)],
    )
    client = tweepy.Client(bearer_token=TOKEN, wait_on_rate_limit=False)
    got, sleeps = [], []
    with caplog.at_level(logging.WARNING, logger="ingest.twitter"):
        total = poll_search(
            client,
            ["coffee", "tea"],
            got.append,
            threading.Event(),
            no_retweets=True,
            interval=30,
            sleep=sleeps.append,
            max_polls=2,
        )
    assert total == 4
    # The first poll takes only the newest page; each poll relays oldest first.
    assert [t.id[-3:] for t in got] == ["101", "102", "103", "104"]
    assert [t.keyword for t in got] == ["tea", "coffee", "coffee", "coffee"]  # first tracked keyword in the text
    assert "waiting until 00:00:00 UTC" in caplog.text  # 2100-01-01, from x-rate-limit-reset
    assert sleeps[0] == 30 and sleeps[1] > 1000  # the poll interval, then the rate-limit wait
    assert len(responses.calls) == 4


@responses.activate
def test_unreachable_api_is_a_clear_error():
    responses.get(RULES, body=requests.ConnectionError("no route to host"))
    with pytest.raises(TwitterSetupError, match="cannot reach the X API"):
        run_stream(TOKEN, ["coffee"], lambda t: None, threading.Event())


@responses.activate
def test_search_retries_transient_failures_with_backoff_instead_of_exiting(caplog):
    responses.get(SEARCH, body=requests.ConnectionError("connection reset by peer"))
    responses.get(SEARCH, json={"title": "Service Unavailable"}, status=503)
    responses.get(SEARCH, json=fixture("search_page1.json"))
    client = tweepy.Client(bearer_token=TOKEN, wait_on_rate_limit=False)
    got, sleeps = [], []
    with caplog.at_level(logging.WARNING, logger="ingest.twitter"):
        total = poll_search(
            client,
            ["coffee", "tea"],
            got.append,
            threading.Event(),
            sleep=sleeps.append,
            max_polls=1,
            backoff=Backoff(base=1.0, cap=60.0),
        )
    assert total == 2 and len(got) == 2
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # growing backoff
    assert "cannot reach the X API (ConnectionError); retrying" in caplog.text
    assert "HTTP 503" in caplog.text


def test_a_stop_during_a_long_wait_ends_the_search_at_once():
    import time

    class NeverCalled:
        session = requests.Session()

        def search_recent_tweets(self, *args, **kwargs):
            raise tweepy.TooManyRequests(_response(429, reset=time.time() + 900))

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert poll_search(NeverCalled(), ["coffee"], lambda t: None, stop) == 0
    assert time.monotonic() - started < 2  # not the 15 minutes of the rate limit


def _response(status: int, reset: float) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["x-rate-limit-reset"] = str(int(reset))
    response._content = b"{}"
    return response
