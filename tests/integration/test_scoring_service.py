"""The job's HTTP client against a real server on loopback: urllib3 retries, and waiting out an outage."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stream.scoring import (
    ScoringOptions,
    ServiceError,
    ServiceOutage,
    make_session,
    score_texts,
    wait_for_service,
)

pytestmark = pytest.mark.integration


HOLD = 0  # a scripted "status": answer 200, but only after the client's read timeout


class Flaky:
    """A server answering each path with a scripted list of statuses (then 200 for ever)."""

    def __init__(self, script: dict[str, list[int]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, body: dict | None = None) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                statuses = outer.script.get(self.path, [])
                status = statuses.pop(0) if statuses else 200
                if status == HOLD:  # the work taken, the answer late: the client's read timeout
                    time.sleep(1.5)
                    status = 200
                payload = json.dumps(body if status == 200 and body else {"error": "scripted"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._answer({"status": "ok"})

            def do_POST(self):
                texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["texts"]
                self._answer({"results": [{"p_positive": len(t) / 100} for t in texts]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky():
    servers = []

    def make(script):
        servers.append(Flaky(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def options(url: str, retries: int = 2) -> ScoringOptions:
    return ScoringOptions(service_url=url, batch_size=10, timeout=5, retries=retries, backoff=0.0)


def test_the_session_retries_what_the_service_did_not_take(flaky):
    server = flaky({"/predict/batch": [503, 429]})
    with make_session(options(server.url)) as session:
        assert score_texts(["abc", "de"], session, options(server.url)) == [0.03, 0.02]
    assert server.hits["/predict/batch"] == 3


def test_the_session_gives_up_after_its_retries(flaky):
    server = flaky({"/predict/batch": [503] * 5})
    with make_session(options(server.url)) as session, pytest.raises(ServiceError, match="HTTP 503"):
        score_texts(["abc"], session, options(server.url))
    assert server.hits["/predict/batch"] == 3


@pytest.mark.parametrize("status", [500, 502, 504, HOLD])
def test_work_the_service_may_have_taken_is_not_sent_twice(flaky, status):
    """A 500, a proxy's 502 or 504, a read timeout: the service may be scoring it still."""
    server = flaky({"/predict/batch": [status]})
    with make_session(options(server.url)) as session, pytest.raises(ServiceError):
        score_texts(["abc"], session, ScoringOptions(service_url=server.url, timeout=0.5, retries=2, backoff=0.0))
    assert server.hits["/predict/batch"] == 1


def test_client_errors_are_not_retried(flaky):
    server = flaky({"/predict/batch": [400]})
    with make_session(options(server.url)) as session, pytest.raises(ServiceError, match="HTTP 400"):
        score_texts(["abc"], session, options(server.url))
    assert server.hits["/predict/batch"] == 1


def test_a_batch_is_held_until_the_service_is_healthy(flaky, caplog):
    server = flaky({"/health": [503, 503, 503]})
    with caplog.at_level(logging.WARNING, logger="stream.scoring"):
        waited = wait_for_service(server.url, "batch 7 (12 tweet(s))", report_every=0.0, cap=0.05)
    assert waited > 0 and server.hits["/health"] == 4
    assert "holding batch 7 (12 tweet(s))" in caplog.text and "back after" in caplog.text


def test_an_outage_longer_than_the_limit_is_an_error(flaky):
    server = flaky({"/health": [503] * 1000})
    with pytest.raises(ServiceOutage, match="outage_limit_seconds"):
        wait_for_service(server.url, "batch 1", limit=0.3, cap=0.05)


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    from harness.processes import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_requests_spread_over_replicas_and_skip_a_dead_one(flaky, caplog):
    a, b = flaky({}), flaky({})
    dead = closed_port_url()
    opts = ScoringOptions(service_url=f"{a.url},{dead},{b.url}", batch_size=1, timeout=5, retries=2, backoff=0.0)
    texts = [f"t{i}" * (i + 1) for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="stream.replicas"), make_session(opts) as session:
        scores = score_texts(texts, session, opts)
    assert scores == [len(t) / 100 for t in texts]
    assert a.hits["/predict/batch"] >= 4 and b.hits["/predict/batch"] >= 4  # both live ones shared the work
    assert a.hits["/predict/batch"] + b.hits["/predict/batch"] == 12
    assert caplog.text.count(f"replica {dead} failed") == 1  # said once, then skipped for the cooldown


def test_a_replica_answering_5xx_is_skipped_and_its_request_served_elsewhere(flaky):
    sick, well = flaky({"/predict/batch": [503] * 100}), flaky({})
    opts = ScoringOptions(
        service_url=f"{sick.url},{well.url}", batch_size=1, timeout=5, retries=0, backoff=0.0, concurrency=1
    )
    with make_session(opts) as session:
        assert score_texts(["a", "bb", "ccc"], session, opts) == [0.01, 0.02, 0.03]
    assert sick.hits["/predict/batch"] == 1 and well.hits["/predict/batch"] == 3


def test_when_no_replica_answers_the_error_names_each(flaky):
    dead1, dead2 = closed_port_url(), closed_port_url()
    opts = ScoringOptions(service_url=f"{dead1},{dead2}", batch_size=10, timeout=2, retries=0, backoff=0.0)
    with make_session(opts) as session, pytest.raises(ServiceError, match="none of 2 model service replicas") as e:
        score_texts(["abc"], session, opts)
    assert dead1 in str(e.value) and dead2 in str(e.value)


def test_the_job_waits_only_while_no_replica_is_healthy(flaky, caplog):
    down, up = flaky({"/health": [503] * 1000}), flaky({})
    with caplog.at_level(logging.WARNING, logger="stream.scoring"):
        assert wait_for_service(f"{down.url},{up.url}", "batch 3", limit=5) == 0.0
    assert f"replica {down.url} is down (HTTP 503)" in caplog.text
    both_down = flaky({"/health": [503, 503]})
    waited = wait_for_service(f"{closed_port_url()},{both_down.url}", "batch 4", report_every=0.0, cap=0.05)
    assert waited > 0 and both_down.hits["/health"] == 3


def test_the_health_command_exits_zero_only_while_the_service_is_healthy(flaky, capsys):
    from stream.health import main as health

    server = flaky({"/health": [503]})
    assert health([server.url]) == 1
    assert "HTTP 503" in capsys.readouterr().err
    assert health([server.url]) == 0
    server.close()
    assert health([server.url, "--timeout", "1"]) == 1
