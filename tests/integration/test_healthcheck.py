"""The containers' health check of the model service passes with and without a token."""

from __future__ import annotations

import dataclasses

import pytest

from model_api.healthcheck import main
from sentiment.config import Config
from tests.conftest import FakePredictor
from tests.support.front import front, serve_front

pytestmark = pytest.mark.integration


def served(open_paths: str):
    config = Config()
    config = dataclasses.replace(config, service=dataclasses.replace(config.service, open_paths=open_paths))
    return serve_front(front(config, FakePredictor()))


def test_without_a_token(monkeypatch):
    monkeypatch.delenv("TWEETSENT_SERVICE_TOKEN", raising=False)
    for url in served("/health"):
        assert main(["--url", url]) == 0


@pytest.mark.parametrize("open_paths", ["/health", ""])
def test_with_a_token_open_health_or_not(monkeypatch, open_paths):
    monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "s3cret")
    for url in served(open_paths):
        assert main(["--url", url]) == 0  # sends the configured token
        monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "wrong")
        assert main(["--url", url]) == (0 if open_paths else 1)
        monkeypatch.setenv("TWEETSENT_SERVICE_TOKEN", "s3cret")


def test_a_service_that_is_down_fails_the_check(monkeypatch, capsys):
    monkeypatch.delenv("TWEETSENT_SERVICE_TOKEN", raising=False)
    assert main(["--url", "http://127.0.0.1:9", "--timeout", "1"]) == 1
    assert "127.0.0.1:9/health" in capsys.readouterr().err
