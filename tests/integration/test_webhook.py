import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from sentiment.config import TrendsConfig
from sentiment.schema import ALERTS_COLUMNS
from sentiment.webhook import alerts_payload, notify_alerts, post_json

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on 127.0.0.1: answers ``statuses`` in turn (then 200), or stalls ``delay`` seconds."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                if receiver.delay:
                    time.sleep(receiver.delay)  # the receiver being slow is the case under test
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alerts() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "keyword": "python",
                "window_start": pd.Timestamp("2026-11-28 10:30", tz="UTC"),
                "window_end": pd.Timestamp("2026-11-28 10:31", tz="UTC"),
                "n": 120,
                "n_negative": 96,
                "negative_share": 0.8,
                "baseline_mean": 0.2,
                "baseline_std": 0.02,
                "baseline_windows": 30,
                "z_score": 30.0,
            }
        ],
        columns=list(ALERTS_COLUMNS),
    )


def test_alerts_are_posted_as_json(alerts, caplog):
    with Receiver() as receiver:
        config = TrendsConfig(webhook_url=receiver.url)
        assert notify_alerts(alerts, config) is True
    assert receiver.bodies == [alerts_payload(alerts)]
    sent = receiver.bodies[0]["alerts"][0]
    assert sent["keyword"] == "python"
    assert sent["window_start"] == "2026-11-28T10:30:00+00:00"
    assert sent["n"] == 120 and sent["z_score"] == 30.0
    assert "negative spike for 'python'" in caplog.text


def test_server_errors_are_retried_until_an_answer(alerts):
    with Receiver(statuses=[503, 500]) as receiver:
        ok = post_json(receiver.url, alerts_payload(alerts), timeout_seconds=5, retries=3, backoff_seconds=0.01)
    assert ok is True
    assert len(receiver.bodies) == 3


def test_giving_up_returns_false_and_logs(alerts, caplog):
    with Receiver(statuses=[503] * 10) as receiver:
        ok = post_json(receiver.url, alerts_payload(alerts), timeout_seconds=5, retries=2, backoff_seconds=0.01)
    assert ok is False
    assert len(receiver.bodies) == 3  # the first attempt and two retries
    assert "503" in caplog.text


def test_a_client_error_is_not_retried(alerts):
    with Receiver(statuses=[400]) as receiver:
        assert post_json(receiver.url, alerts_payload(alerts), timeout_seconds=5, retries=3) is False
    assert len(receiver.bodies) == 1


def test_a_slow_receiver_is_bounded_by_the_timeout(alerts, caplog):
    with Receiver(delay=2.0) as receiver:
        started = time.monotonic()
        ok = post_json(receiver.url, alerts_payload(alerts), timeout_seconds=0.3, retries=1, backoff_seconds=0.01)
        elapsed = time.monotonic() - started
    assert ok is False
    assert elapsed < 1.5  # two attempts of 0.3 s, not two of 2 s
    assert "failed" in caplog.text


def test_nobody_listening_never_raises(alerts):
    with Receiver() as receiver:
        url = receiver.url
    # The receiver is closed: connections are refused.
    config = TrendsConfig(webhook_url=url, webhook_retries=1, webhook_timeout_seconds=0.5)
    assert notify_alerts(alerts, config) is False


def test_no_webhook_configured_only_logs(alerts, caplog):
    assert notify_alerts(alerts, TrendsConfig()) is True
    assert "python" in caplog.text


@pytest.mark.parametrize("statuses", [[], [500]], ids=["refused", "answered-500"])
def test_logs_name_the_webhook_by_scheme_and_host_only(alerts, caplog, statuses):
    secret = "/hooks/T0123/B0456/s3cr3t-t0k3n?key=also-secret"
    with Receiver(statuses=statuses) as receiver:
        url = receiver.url.replace("127.0.0.1", "user:pw@127.0.0.1") + secret
        if not statuses:
            receiver.server.shutdown()
            receiver.server.server_close()
        post_json(url, alerts_payload(alerts), timeout_seconds=0.5, retries=0)
    assert "webhook http://127.0.0.1 " in caplog.text
    for leak in ("s3cr3t", "also-secret", "hooks", "pw@", "user:"):
        assert leak not in caplog.text
