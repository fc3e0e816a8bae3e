"""Thousands of generated hostile requests against the service's front (in-process, a fake model): never a 500."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from sentiment.config import Config
from tests.conftest import FakePredictor
from tests.hostile_requests import check_answer, hostile_requests
from tests.support.front import FrontClient, front

pytestmark = pytest.mark.unit

MAX_BODY, MAX_BATCH = 4096, 16
CONFIG = dataclasses.replace(
    Config(), service=dataclasses.replace(Config().service, max_body_bytes=MAX_BODY, max_batch=MAX_BATCH)
)


class TokenizerLikePredictor(FakePredictor):
    """The fake model, refusing what the real tokenizer refuses: text that is not valid Unicode."""

    def predict(self, texts):
        for t in texts:
            t.encode("utf-8")  # a lone surrogate raises, as it does in the tokenizer
        return super().predict(texts)


CLIENT = FrontClient(front(CONFIG, TokenizerLikePredictor()))
PATHS = CLIENT.service.openapi["paths"]
KINDS: Counter[str] = Counter()


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_requests(MAX_BODY, MAX_BATCH))
def test_no_request_gets_a_500_and_every_error_is_json(request):
    headers = dict(request.headers)
    content_type = headers.pop("Content-Type", None)
    r = CLIENT.open(
        request.path,
        method=request.method,
        headers=headers,
        content_type=content_type,
        data=request.body,
        chunked=request.chunked,
    )
    KINDS[request.kind] += 1
    check_answer(request, r.status_code, r.headers, r.get_data(), PATHS)


def test_the_service_is_still_correct_after_the_flood():
    print("hostile requests by kind:", dict(KINDS), "total", sum(KINDS.values()))
    assert sum(KINDS.values()) >= 2000 and len(KINDS) == 12
    r = CLIENT.post("/predict/batch", json={"texts": ["good", "bad \ud800", "meh"]})
    assert r.status_code == 200
    assert [x["sentiment"] for x in r.get_json()["results"]] == ["Positive", "Negative", "Neutral"]
