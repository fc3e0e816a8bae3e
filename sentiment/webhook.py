"""Alerts out of the pipeline: a log line each, and a JSON POST to a configured webhook.

Usage (in the job, after the alerts of a batch are written)::

    notify_alerts(alerts_df, config.trends)

A webhook that is down, slow or answers an error never stops the caller: the POST is retried
with exponential backoff, each attempt bounded by a timeout, and a final failure is logged.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import TYPE_CHECKING

import pandas as pd
import urllib3

from sentiment.schema import ALERTS_COLUMNS
from sentiment.trends import describe_alert

if TYPE_CHECKING:
    from sentiment.config import TrendsConfig

log = logging.getLogger(__name__)
# Answers worth another try; any other 4xx means the request itself is wrong.
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


def alerts_payload(alerts: pd.DataFrame) -> dict:
    """The JSON body of a webhook call: ``{"alerts": [{column: value, ...}, ...]}``, times in ISO 8601."""
    records = []
    for row in alerts.loc[:, list(ALERTS_COLUMNS)].to_dict("records"):
        record = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.isoformat()
            elif hasattr(value, "item"):  # numpy scalars
                record[key] = value.item()
            else:
                record[key] = value
        records.append(record)
    return {"alerts": records}


def post_json(
    url: str,
    payload: dict,
    *,
    timeout_seconds: float,
    retries: int,
    backoff_seconds: float = 0.5,
    pool: urllib3.PoolManager | None = None,
) -> bool:
    """POST ``payload`` as JSON to ``url``; True on a 2xx answer. Never raises.

    Args:
        url: the webhook.
        payload: a JSON-serialisable dict.
        timeout_seconds: bound of each attempt (connect plus read).
        retries: attempts after the first, on a connection error, a timeout or a status in
            :data:`RETRY_STATUSES`; the waits between them double from ``backoff_seconds``.
        backoff_seconds: the first wait.
        pool: a pool to reuse; a new one by default.
    """
    retry = urllib3.Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=None,  # POST too: a webhook receiver is expected to cope with a repeat
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_seconds,
        respect_retry_after_header=False,
        raise_on_status=False,
        redirect=False,
    )
    try:
        body = json.dumps(payload).encode("utf-8")
        response = (pool or urllib3.PoolManager()).request(
            "POST",
            url,
            body=body,
            headers={"Content-Type": "application/json"},
            timeout=urllib3.Timeout(total=timeout_seconds),
            retries=retry,
        )
    except Exception as e:  # noqa: BLE001 - the caller must go on whatever the webhook does
        log.warning("webhook %s failed after %d retries: %s", where(url), retries, _scrub(url, e))
        return False
    if 200 <= response.status < 300:
        return True
    log.warning("webhook %s answered %d after %d retries: %.200s", where(url), response.status, retries, response.data)
    return False


def where(url: str) -> str:
    """The webhook as logs name it: scheme and host only (a webhook's path or query often is its secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def _scrub(url: str, error: Exception) -> str:
    """The error's text without the URL's path, query or credentials (urllib3 quotes the path)."""
    reason = getattr(error, "reason", None)
    text = f"{type(error).__name__}: {reason if reason is not None else error}"
    parts = urllib.parse.urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.username, parts.password):
        if secret and secret != "/":
            text = text.replace(secret, "…")
    return text


def notify_alerts(alerts: pd.DataFrame, config: TrendsConfig, pool: urllib3.PoolManager | None = None) -> bool:
    """Log one line per alert and, if ``config.webhook_url`` is set, POST them all in one call.

    Returns:
        False only when a webhook is configured and could not be reached; True otherwise.
    """
    if alerts.empty:
        return True
    for _, alert in alerts.iterrows():
        log.warning("alert: %s", describe_alert(alert))
    if not config.webhook_url:
        return True
    return post_json(
        config.webhook_url,
        alerts_payload(alerts),
        timeout_seconds=config.webhook_timeout_seconds,
        retries=config.webhook_retries,
        pool=pool,
    )
