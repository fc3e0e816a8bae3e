"""The compose files deliver: every command is the entry point's real one (its --help lists each
option), what one service writes is on the volume where another reads it, and the ports agree
with the configuration. Docker itself is not needed: the files are parsed as compose would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from dashboard.__main__ import parse_args as dashboard_args
from ingest.cli import build_parser as ingest_parser
from model_api.__main__ import build_parser as model_api_parser
from sentiment.config import PROJECT_ROOT, Config, load_config
from stream.job import build_parser as stream_parser
from stream.job import job_config_from_args

pytestmark = pytest.mark.unit
DOCKER = PROJECT_ROOT / "docker"
WORKDIR = PurePosixPath("/app")  # the images' WORKDIR: the project root inside a container
COMPOSE_FILES = ("compose.yaml", "compose.cluster.yaml")


def services(name: str) -> dict[str, dict]:
    return yaml.safe_load((DOCKER / name).read_text())["services"]


def python_commands(name: str) -> list[tuple[str, list[str]]]:
    """(service, command) of every service (and health check) that runs ``python -m``."""
    found = []
    for service_name, service in services(name).items():
        if service["command"][:2] == ["python", "-m"]:
            found.append((service_name, service["command"]))
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:3] == ["python", "-m"]:
            found.append((f"{service_name} health check", test[1:]))
    return found


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_option_of_every_command_is_in_its_entry_points_help(name):
    for service_name, command in python_commands(name):
        module, args = command[2], command[3:]
        words = [a for a in args if not a.startswith("-")]
        sub = [words[0]] if module == "ingest" and words else []  # ingest's subcommand
        run = subprocess.run(
            [sys.executable, "-m", module, *sub, "--help"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{service_name}: python -m {module} --help failed: {run.stderr[-500:]}"
        for option in (a.split("=")[0] for a in args if a.startswith("--")):
            assert option in run.stdout, f"{service_name}: {module} has no option {option}"


def in_container(path: str | Path) -> PurePosixPath:
    """A path the configuration resolves on this machine, as it resolves in a container."""
    path = Path(path)
    return WORKDIR / path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else PurePosixPath(path)


def on_volume(service: dict, path: PurePosixPath) -> tuple[str, PurePosixPath] | None:
    """(volume, path inside it) when ``path`` is on one of the service's volumes, else None (the container's own)."""
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if path.is_relative_to(target):
            return source, path.relative_to(target)
    return None


def reads_and_writes(service: dict, config: Config) -> tuple[set[PurePosixPath], set[PurePosixPath]]:
    """The folders a service reads and writes, from its command and the configuration."""
    command = service["command"]
    if command[:3] == ["python", "-m", "ingest"]:
        args = ingest_parser().parse_args(command[3:])
        return set(), {in_container(config.resolve(args.spool or config.relay.spool))}
    if command[:3] == ["python", "-m", "stream"]:
        job = job_config_from_args(stream_parser().parse_args(command[3:]), config)
        written = {job.output, job.quarantine, job.checkpoint, job.trends.output, job.trends.alerts}
        return {in_container(job.spool)}, {in_container(p) for p in written}
    if command[:3] == ["python", "-m", "dashboard"]:
        args = dashboard_args(command[3:])
        return {in_container(p) for p in (args.tweets, args.trends, args.alerts)}, set()
    return set(), set()


def test_what_one_service_writes_is_on_the_volume_where_another_reads_it():
    config = load_config(env={})
    all_services = services("compose.yaml")
    written: dict[tuple[str, PurePosixPath], str] = {}
    for name, service in all_services.items():
        for path in reads_and_writes(service, config)[1]:
            place = on_volume(service, path)
            assert place is not None, f"{name} writes {path} inside its own container: no other service sees it"
            written[place] = name
    for name, service in all_services.items():
        for path in reads_and_writes(service, config)[0]:
            place = on_volume(service, path)
            assert place in written, f"{name} reads {path}, which no service writes on a shared volume"
    assert len({volume for volume, _ in written}) == 1  # one shared volume


def test_ports_agree_with_the_configuration():
    config = load_config(env={})
    compose = services("compose.yaml")
    model = model_api_parser().parse_args(compose["model_api"]["command"][3:])
    assert model.port == config.service.port
    assert compose["model_api"]["ports"] == [f"127.0.0.1:{config.service.port}:{config.service.port}"]
    health = compose["model_api"]["healthcheck"]["test"]
    assert health[health.index("--url") + 1] == f"http://127.0.0.1:{config.service.port}"
    job = stream_parser().parse_args(compose["stream"]["command"][3:])
    assert job.service_url == [f"http://model_api:{config.service.port}"]
    dashboard = dashboard_args(compose["dashboard"]["command"][3:])
    assert dashboard.port == config.trends.dashboard_port
    assert compose["dashboard"]["ports"] == [f"127.0.0.1:{dashboard.port}:{dashboard.port}"]


def test_the_build_context_leaves_out_the_environment_and_the_outputs():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for path in (".venv/", "output/", ".git/"):
        assert path in ignored
    for dockerfile in DOCKER.glob("Dockerfile.*"):
        for copied in (line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("COPY ")):
            assert not any(copied.startswith(p.rstrip("/")) for p in ignored), f"{dockerfile.name} copies {copied}"
