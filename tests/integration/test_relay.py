"""The socket relay over real loopback sockets."""

import json
import socket
import threading

import pytest

from ingest.relay import SocketRelay, TweetBuffer, feed
from sentiment.schema import Tweet

pytestmark = pytest.mark.integration


def tweets(n: int, start: int = 0) -> list[Tweet]:
    return [Tweet(str(i), "2009-04-07T05:19:45Z", "u", f"text {i}") for i in range(start, start + n)]


def read_lines(port: int, n: int) -> list[dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        f = conn.makefile("rb")
        return [json.loads(f.readline()) for _ in range(n)]


def test_tweets_wait_for_a_late_client():
    buffer = TweetBuffer(100)
    assert feed(tweets(50), buffer) == 50  # nobody connected yet: all buffered
    with SocketRelay("127.0.0.1", 0, buffer) as relay:
        lines = read_lines(relay.port, 50)
    assert [x["id"] for x in lines] == [str(i) for i in range(50)]
    assert all(isinstance(x["relayed_at"], float) and x["text"].startswith("text") for x in lines)


def test_tweets_produced_while_disconnected_reach_the_next_client():
    buffer = TweetBuffer(1000)
    feed(tweets(100), buffer)
    with SocketRelay("127.0.0.1", 0, buffer) as relay:
        first = read_lines(relay.port, 100)  # then the client goes away
        feed(tweets(100, start=100), buffer)
        second = read_lines(relay.port, 100)
    assert [x["id"] for x in first + second] == [str(i) for i in range(200)]


def test_blocking_buffer_applies_back_pressure():
    buffer = TweetBuffer(5, overflow="block")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (feed(tweets(20), buffer), done.set()), daemon=True)
    thread.start()
    assert not done.wait(0.3) and len(buffer) == 5
    with SocketRelay("127.0.0.1", 0, buffer) as relay:
        lines = read_lines(relay.port, 20)
    assert done.wait(5)
    assert [x["id"] for x in lines] == [str(i) for i in range(20)]


def test_drop_oldest_counts_what_it_drops():
    buffer = TweetBuffer(10, overflow="drop-oldest")
    feed(tweets(25), buffer)
    assert buffer.dropped == 15
    with SocketRelay("127.0.0.1", 0, buffer) as relay:
        lines = read_lines(relay.port, 10)
    assert [x["id"] for x in lines] == [str(i) for i in range(15, 25)]


def test_malformed_lines_pass_through_unchanged():
    buffer = TweetBuffer(10)
    buffer.put(b"not json at all\n")
    with SocketRelay("127.0.0.1", 0, buffer) as relay, socket.create_connection(("127.0.0.1", relay.port)) as c:
        assert c.makefile("rb").readline() == b"not json at all\n"
