"""The compose file parses, wires the three parts, and names commands that exist."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from ingest.__main__ import build_parser as ingest_parser
from model_api.__main__ import build_parser as model_api_parser
from stream.job import build_parser as stream_parser

pytestmark = pytest.mark.unit
DOCKER = Path(__file__).resolve().parents[2] / "docker"
PARSERS = {"model_api": model_api_parser, "ingest": ingest_parser, "stream": stream_parser}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_three_services_wired_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"model_api", "relay", "stream"}
    assert "healthcheck" in services["model_api"]
    assert services["stream"]["depends_on"]["model_api"]["condition"] == "service_healthy"
    assert any(v.endswith(":/app/output") for v in services["stream"]["volumes"])


def test_commands_are_real_entry_points_with_valid_options(compose):
    for name, service in compose["services"].items():
        command = service["command"]
        assert command[:2] == ["python", "-m"], name
        module = command[2]
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
        PARSERS[module]().parse_args(command[3:])  # exits (fails the test) on an unknown option


def test_dockerfiles_copy_what_they_run():
    for dockerfile in DOCKER.glob("Dockerfile.*"):
        text = dockerfile.read_text()
        copied = set(re.findall(r"^COPY (\S+?)/? ", text, re.M))
        for module in re.findall(r'"-m", "(\w+)"', text):
            assert module in copied, f"{dockerfile.name} runs {module} but does not copy it"
        for path in copied:
            assert (DOCKER.parent / path).exists(), f"{dockerfile.name} copies missing {path}"
