"""Roll a model out across model-service replicas, one at a time; roll back the same way.

Usage: python -m model_api.rollout --model DIR_OR_HUB_NAME --service URL [--service URL ...]

For each replica in turn: ``POST /admin/model`` with ``route_around`` (its ``/health`` answers 503
"switching" and its scoring answers say so, so that the job sends its requests to the other
replicas while this one loads, warms and checks the new model; it still answers what it gets, on
the old model), then wait until its ``GET /health`` is 200 and ``GET /model`` names the new
version. The first refusal (or a replica that does not come back) stops the roll-out: the
replicas not reached serve the old model. The token is read from ``TWEETSENT_SERVICE_TOKEN``.
Exit status: 0 when every replica serves the model, 1 when the roll-out stopped, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from sentiment.config import TOKEN_ENV, load_config, service_token
from sentiment.logs import setup_logging

SWAP_TIMEOUT_SECONDS = 900.0  # loading, warming and checking a model on a busy laptop


@dataclass
class Step:
    """One replica's roll-out."""

    url: str
    before: str = "?"
    after: str = ""
    outcome: str = "not reached"  # serving, refused, failed, not reached
    detail: str = ""
    seconds: float = 0.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_api.rollout", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory or Hugging Face hub name to serve")
    p.add_argument(
        "--service", action="append", required=True, help="a replica's base URL (repeat, or comma-separated)"
    )
    p.add_argument("--timeout", type=float, default=SWAP_TIMEOUT_SECONDS, help="seconds each replica may take")
    return p


def _model_version(session: requests.Session, url: str) -> str:
    r = session.get(url + "/model", timeout=10)
    r.raise_for_status()
    info = r.json()
    return info.get("model_version") or f"{info.get('name', 'model')}@{info.get('version', 'unversioned')}"


def _serves(session: requests.Session, url: str, version: str, deadline: float) -> bool:
    """Wait until ``url`` is healthy and serves ``version`` (every worker: each answer asked)."""
    while time.monotonic() < deadline:
        try:
            healthy = session.get(url + "/health", timeout=10).status_code == 200
            if healthy and _model_version(session, url) == version:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def roll_one(session: requests.Session, step: Step, model: str, timeout: float) -> bool:
    """Swap one replica; True when it serves the new model, healthy."""
    started = time.monotonic()
    try:
        step.before = _model_version(session, step.url)
        r = session.post(step.url + "/admin/model", json={"model": model, "route_around": True}, timeout=timeout)
    except requests.RequestException as e:
        step.outcome, step.detail = "failed", f"{type(e).__name__}: {str(e)[:300]}"
        return False
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        step.outcome = "refused" if r.status_code == 422 else "failed"
        step.detail = f"HTTP {r.status_code}: {answer.get('error', r.text[:300])}"
        return False
    step.after = answer.get("version", "?")
    if not _serves(session, step.url, step.after, time.monotonic() + timeout):
        step.outcome, step.detail = "failed", f"not healthy on {step.after} within {timeout:.0f} s"
        return False
    step.outcome, step.seconds = "serving", time.monotonic() - started
    workers = answer.get("workers")
    if workers:
        step.detail = f"{workers['serving']} of {workers['of']} workers"
    return True


def rollout(urls: list[str], model: str, token: str = "", timeout: float = SWAP_TIMEOUT_SECONDS) -> list[Step]:
    """Roll ``model`` out to ``urls`` in order, stopping at the first replica that does not take it."""
    steps = [Step(url) for url in urls]
    with requests.Session() as session:
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        for step in steps:
            print(f"rollout: {step.url}: loading {model} ...", flush=True)
            if not roll_one(session, step, model, timeout):
                break
            print(f"rollout: {step.url}: serves {step.after} ({step.seconds:.1f} s)", flush=True)
    return steps


def summary(steps: list[Step], model: str) -> str:
    lines = [f"rollout of {model}:"]
    for s in steps:
        versions = f"{s.before} -> {s.after}" if s.outcome == "serving" else s.before
        lines.append(f"  {s.url}  {s.outcome:<11} {versions}  {s.detail}".rstrip())
    done = sum(s.outcome == "serving" for s in steps)
    if done == len(steps):
        lines.append(f"all {done} replicas serve it")
    else:
        lines.append(f"stopped: {done} of {len(steps)} replicas serve it; the others serve what they served")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    urls = [u.strip().rstrip("/") for spec in args.service for u in spec.split(",") if u.strip()]
    if not urls:
        print("error: --service names no URL", file=sys.stderr)
        return 2
    # A directory here is sent as an absolute path: the service may run from another folder.
    model = str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model
    token = service_token(load_config().service)
    steps = rollout(urls, model, token, args.timeout)
    print(summary(steps, model), flush=True)
    if any(s.outcome in ("refused", "failed") for s in steps) and not token:
        print(f"(no token: set {TOKEN_ENV} if the service needs one)", file=sys.stderr)
    return 0 if all(s.outcome == "serving" for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
