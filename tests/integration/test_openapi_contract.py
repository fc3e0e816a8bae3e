"""The OpenAPI document is the contract: Schemathesis generates requests from the real service's
``GET /openapi.json`` (``python -m model_api`` on loopback, the bundled default model, a bearer
token set) and checks every answer against it, on every route, the admin one included: no 500,
documented status codes, content types and headers, bodies that match their schemas, invalid input
rejected, valid input accepted, the token enforced.

The admin route's generated requests name model paths that do not exist or cannot load, so no
model is swapped (the hub is offline for the service). CI runs a fixed seed and a bounded number of
examples per route; run it longer by hand (docs/service.md):

    TWEETSENT_SCHEMATHESIS_EXAMPLES=1000 TWEETSENT_SCHEMATHESIS_SEED=random \\
        .venv/bin/python -m pytest tests/integration/test_openapi_contract.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import start_service, stop_process, wait_for_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("TWEETSENT_SCHEMATHESIS_EXAMPLES", "50"))
SEED = os.environ.get("TWEETSENT_SCHEMATHESIS_SEED", "20261206")
PHASES = "examples,coverage,fuzzing,stateful"
TOKEN = "contract-test-token"
CONFIG = Path(__file__).with_name("schemathesis.toml")  # 422 as the admin route's refusal of a valid body


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    log = tmp_path_factory.mktemp("contract") / "service.log"
    settings = {
        "TWEETSENT_SERVICE_TOKEN": TOKEN,
        "TWEETSENT_SERVICE__PRECISION": "fp32",  # ready in seconds; the engine is not under test
        "TWEETSENT_SERVICE__WORKERS": "1",
        "HF_HUB_OFFLINE": "1",  # a generated model name is never looked up on the hub
    }
    process, url = start_service(log, settings)
    wait_for_service(process, url, log, timeout=180)
    yield url
    stop_process(process)


def schemathesis_command(url: str) -> list[str]:
    """The ``st run`` command: every check, every phase, bounded examples, a fixed seed."""
    command = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run", f"{url}/openapi.json"]
    command += ["--checks", "all"]
    command += ["--phases", PHASES, "--max-examples", str(EXAMPLES), "--workers", "1", "--request-timeout", "60"]
    command += ["--header", f"Authorization: Bearer {TOKEN}", "--suppress-health-check", "too_slow"]
    return command + ([] if SEED == "random" else ["--seed", SEED])


def test_every_route_answers_as_the_document_says(service, tmp_path):
    result = subprocess.run(
        schemathesis_command(service), capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    report = result.stdout + result.stderr
    # Schemathesis prints each failure with the curl command that reproduces it (the token filtered).
    assert result.returncode == 0, report[-12000:]
    assert "Tested: 7" in report or "Tested: 6" in report, report[-3000:]
    assert TOKEN not in report
