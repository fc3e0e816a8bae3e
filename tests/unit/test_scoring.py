import pytest

from stream.scoring import ScoringOptions, ServiceError, score_texts

pytestmark = pytest.mark.unit


class Response:
    def __init__(self, status: int, body: dict | None = None, text: str = "") -> None:
        self.status_code = status
        self._body = body
        self.text = text

    def json(self):
        return self._body


class FakeClient:
    """Answers p_positive = len(text) / 100, after the given list of failures."""

    def __init__(self, failures: list = ()) -> None:
        self.failures = list(failures)
        self.requests: list[list[str]] = []

    def post(self, url, json=None, timeout=None):
        assert url == "http://svc/predict/batch"
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        self.requests.append(json["texts"])
        return Response(200, {"results": [{"p_positive": len(t) / 100} for t in json["texts"]]})


OPTIONS = ScoringOptions(service_url="http://svc/", batch_size=2, timeout=1, retries=2, backoff=0.0)


def test_batches_and_keeps_order():
    client = FakeClient()
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    assert score_texts(texts, client, OPTIONS) == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert client.requests == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]


def test_error_answers_and_unreachable_services_are_errors():
    with pytest.raises(ServiceError, match="HTTP 400"):
        score_texts(["abc"], FakeClient([Response(400, text='{"error": "bad"}')]), OPTIONS)
    with pytest.raises(ServiceError, match="unreachable: ConnectionError"):
        score_texts(["abc"], FakeClient([ConnectionError("refused")]), OPTIONS)


def test_wrong_number_of_results_is_an_error():
    class Short(FakeClient):
        def post(self, url, json=None, timeout=None):
            return Response(200, {"results": []})

    with pytest.raises(ServiceError, match="0 result"):
        score_texts(["a"], Short(), OPTIONS)


def test_concurrent_requests_keep_the_order():
    import threading

    class Slow(FakeClient):
        """The first chunk answers last: it waits, in flight, until "bb" and "ccc" have answered,
        and they wait until it is in flight (deadlines only fail the test, never pace it)."""

        def __init__(self):
            super().__init__()
            self.lock = threading.Condition()
            self.in_flight = self.peak = 0
            self.answered: list[str] = []
            self.first_in_flight = threading.Event()
            self.waits_met: list[bool] = []

        def post(self, url, json=None, timeout=None):
            first = json["texts"][0]
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            if first == "a":
                self.first_in_flight.set()
                with self.lock:
                    met = self.lock.wait_for(lambda: {"bb", "ccc"} <= set(self.answered), timeout=10)
            else:
                met = self.first_in_flight.wait(timeout=10)
            try:
                return super().post(url, json=json, timeout=timeout)
            finally:
                with self.lock:
                    self.waits_met.append(met)
                    self.answered.append(first)
                    self.in_flight -= 1
                    self.lock.notify_all()

    client = Slow()
    options = ScoringOptions(service_url="http://svc", batch_size=1, concurrency=3, retries=0)
    assert score_texts(["a", "bb", "ccc", "dddd"], client, options) == [0.01, 0.02, 0.03, 0.04]
    assert client.peak > 1
    assert all(client.waits_met) and len(client.waits_met) == 4
    assert client.answered.index("a") > max(client.answered.index("bb"), client.answered.index("ccc"))


def test_the_token_goes_in_every_request_and_never_in_a_repr():
    from stream.scoring import make_session

    options = ScoringOptions(service_url="http://svc", token="s3cret-token")
    with make_session(options) as session:
        assert session.headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in repr(options)
    with make_session(ScoringOptions(service_url="http://svc")) as session:
        assert "Authorization" not in session.headers
