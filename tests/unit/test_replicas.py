import pytest

from stream.replicas import Replicas, parse_urls

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_urls_from_commas_and_lists_in_order_without_repeats():
    assert parse_urls("http://a:1/, http://b:2") == ("http://a:1", "http://b:2")
    assert parse_urls(["http://a:1,http://b:2", "http://a:1", "http://c:3"]) == (
        "http://a:1",
        "http://b:2",
        "http://c:3",
    )
    with pytest.raises(ValueError, match="--service-url"):
        parse_urls(" , ")


def test_round_robin_over_the_replicas():
    r = Replicas(["http://a", "http://b", "http://c"])
    assert [r.order()[0] for _ in range(6)] == ["http://a", "http://b", "http://c"] * 2


def test_a_failed_replica_sits_out_its_cooldown_then_comes_back():
    clock = Clock()
    r = Replicas(["http://a", "http://b"], cooldown=10, clock=clock)
    r.failed("http://a", "refused")
    assert [r.order()[0] for _ in range(4)] == ["http://b"] * 4
    assert r.order()[-1] == "http://a"  # still tried last, not dropped
    assert r.down() == ["http://a"]
    clock.now += 10
    assert r.down() == [] and {r.order()[0] for _ in range(2)} == {"http://a", "http://b"}


def test_when_all_are_cooling_the_least_recently_failed_goes_first():
    clock = Clock()
    r = Replicas(["http://a", "http://b"], cooldown=10, clock=clock)
    r.failed("http://b", "refused")
    clock.now += 1
    r.failed("http://a", "HTTP 503")
    assert r.order() == ["http://b", "http://a"]
    r.succeeded("http://a")
    assert r.order()[0] == "http://a" and r.down() == ["http://b"]
