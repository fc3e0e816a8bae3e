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


def test_requests_are_packed_by_bytes_as_well_as_by_count():
    import json

    from stream.scoring import pack

    texts = ["a"] * 10 + ["漢" * 20_000] * 3 + ["b"] * 3
    chunks = pack(texts, max_count=8, max_bytes=150_000)
    assert [list(c) for c in chunks] == [list(range(8)), [8, 9, 10], [11], [12, 13, 14, 15]]
    for c in chunks:  # each body as requests sends it, within the budget
        assert len(json.dumps({"texts": [texts[i] for i in c]})) <= 150_000


class Limited(FakeClient):
    """A service with a body limit (413 beyond it) that refuses any text holding "poison" (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def post(self, url, json=None, timeout=None):
        import json as j

        if len(j.dumps(json)) > self.limit:
            return Response(413, text='{"error": "request body is larger than the limit"}')
        if any("poison" in t for t in json["texts"]):
            return Response(400, text='{"error": "bad text"}')
        return super().post(url, json=json, timeout=timeout)


def test_long_texts_are_cut_and_refused_texts_are_set_aside_with_the_reason():
    options = ScoringOptions(service_url="http://svc", batch_size=100, max_request_bytes=10**6, max_text_chars=300)
    client = Limited(limit=2000)  # a service with a smaller limit than the job's budget: requests are split
    texts = ["漢" * 20_000, "ok", "poison", "fine"] * 3
    refused: dict[int, str] = {}
    scores = score_texts(texts, client, options, refused=refused)
    assert scores == [3.0, 0.02, None, 0.04] * 3
    assert sorted(refused) == [2, 6, 10] and all("HTTP 400" in r for r in refused.values())
    assert max(len(t) for request in client.requests for t in request) == 300


def test_without_a_place_for_refusals_a_refusal_is_an_error():
    with pytest.raises(ServiceError, match="HTTP 400"):
        score_texts(["poison"], Limited(limit=10**6), ScoringOptions(service_url="http://svc"))
    with pytest.raises(ServiceError, match="HTTP 401"):  # the job's configuration: never quarantined
        score_texts(["x"], FakeClient([Response(401, text="{}")]), OPTIONS, refused={})


def test_each_text_gets_the_version_of_the_answer_that_scored_it():
    """A model swapped between two requests of one batch: each text keeps its own answer's version."""

    class Swapping(FakeClient):
        def post(self, url, json=None, timeout=None):
            version = "m@1" if not self.requests else "m@2"
            answer = super().post(url, json=json, timeout=timeout)
            answer._body["model_version"] = version
            return answer

    versions: list[str | None] = [None] * 3
    assert score_texts(["a", "bb", "ccc"], Swapping(), OPTIONS, versions=versions) == [0.01, 0.02, 0.03]
    assert versions == ["m@1", "m@1", "m@2"]
    unnamed: list[str | None] = [None]
    score_texts(["a"], FakeClient(), OPTIONS, versions=unnamed)
    assert unnamed == [None]  # a service that does not say: the job falls back to GET /model's version


def test_a_switching_replica_is_skipped_after_its_answer():
    from stream.replicas import Replicas

    class Switching(FakeClient):
        def post(self, url, json=None, timeout=None):
            answer = Response(200, {"results": [{"p_positive": 0.5} for _ in json["texts"]]})
            answer.headers = {"X-Model-Switching": "1"} if "a:1" in url else {}
            self.requests.append(url)
            return answer

    client = Switching()
    options = ScoringOptions(service_url="http://a:1,http://b:2", batch_size=1, timeout=1, concurrency=1)
    replicas = Replicas(options.urls, cooldown=60)
    assert score_texts(["x", "y", "z"], client, options, replicas) == [0.5, 0.5, 0.5]
    assert client.requests == ["http://a:1/predict/batch", "http://b:2/predict/batch", "http://b:2/predict/batch"]
    assert replicas.down() == ["http://a:1"]
