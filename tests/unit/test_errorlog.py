import logging

import pytest

from model_api.front.errorlog import ErrorLog

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_kind_once_per_interval_then_a_count(caplog):
    clock = Clock()
    errors = ErrorLog(logging.getLogger("test.errorlog"), interval=60, clock=clock)
    with caplog.at_level("INFO", logger="test.errorlog"):
        assert errors.report("client error 400", "bad JSON")
        for _ in range(99):
            clock.now += 0.1
            assert not errors.report("client error 400", "bad JSON")
        assert errors.report("client error 413", "too large")  # another kind is not held back
        clock.now = 1000.0 + 60
        assert errors.report("client error 400", "bad JSON")
    assert [r.getMessage() for r in caplog.records] == [
        "client error 400: bad JSON",
        "client error 413: too large",
        "99 more of client error 400 in the last 60 s",
        "client error 400: bad JSON",
    ]


def test_a_traceback_is_written_only_with_the_first_of_its_kind(caplog):
    clock = Clock()
    errors = ErrorLog(logging.getLogger("test.errorlog"), interval=60, clock=clock)
    try:
        raise KeyError("x")
    except KeyError as e:
        error = e
    with caplog.at_level("ERROR", logger="test.errorlog"):
        for _ in range(10):
            errors.report("internal error KeyError", "/predict: 'x'", logging.ERROR, exc_info=error)
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None
