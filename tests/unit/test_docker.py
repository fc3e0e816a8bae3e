"""The compose files parse, wire the parts, and name commands that exist in the project."""

import importlib.util
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from dashboard.__main__ import parse_args as dashboard_args
from ingest.cli import build_parser as ingest_parser
from model_api.__main__ import build_parser as model_api_parser
from stream.job import build_parser as stream_parser

pytestmark = pytest.mark.unit
DOCKER = Path(__file__).resolve().parents[2] / "docker"
PARSERS = {"model_api": model_api_parser, "ingest": ingest_parser, "stream": stream_parser}
COMPOSE_FILES = ("compose.yaml", "compose.cluster.yaml")
SPARK_DAEMONS = {"org.apache.spark.deploy.master.Master", "org.apache.spark.deploy.worker.Worker"}


def load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


@pytest.fixture(scope="module")
def compose():
    return load("compose.yaml")


@pytest.fixture(scope="module")
def cluster():
    return load("compose.cluster.yaml")


def test_four_services_a_health_check_and_the_spool_transport(compose):
    services = compose["services"]
    assert set(services) == {"model_api", "relay", "stream", "dashboard"}
    assert services["model_api"]["healthcheck"]["test"][1:4] == ["python", "-m", "model_api.healthcheck"]
    assert services["stream"]["depends_on"]["model_api"]["condition"] == "service_healthy"
    relay = ingest_parser().parse_args(services["relay"]["command"][3:])
    job = stream_parser().parse_args(services["stream"]["command"][3:])
    # The transport the services use: the spool, on the shared volume (the socket options are gone).
    assert relay.transport == job.transport == "spool"
    assert relay.host is None and relay.port is None and job.host is None and job.port is None


def test_cluster_shape_a_master_workers_replicas_and_the_relay(cluster):
    services = cluster["services"]
    daemons = {name: s["command"][1] for name, s in services.items() if s["command"][0] == "spark-class"}
    assert sorted(daemons.values()).count("org.apache.spark.deploy.master.Master") == 1
    assert sorted(daemons.values()).count("org.apache.spark.deploy.worker.Worker") >= 2
    replicas = [name for name, s in services.items() if s["command"][:3] == ["python", "-m", "model_api"]]
    assert len(replicas) >= 2 and all("healthcheck" in services[r] for r in replicas)
    job = stream_parser().parse_args(services["stream"]["command"][3:])
    master = next(n for n, c in daemons.items() if c.endswith("Master"))
    assert job.master == f"spark://{master}:7077"
    urls = ",".join(job.service_url).split(",")
    assert sorted(u.split("//")[1].split(":")[0] for u in urls) == sorted(replicas)
    # The relay, the workers and the driver share the spool and the output.
    for name in ["relay", "stream", *daemons]:
        assert "data:/app/output" in services[name]["volumes"], name


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_commands_are_real_entry_points_with_valid_options(name):
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    core = next((spark_home / "jars").glob("spark-core_*.jar"))
    classes = set(zipfile.ZipFile(core).namelist())
    for service_name, service in load(name)["services"].items():
        command = service["command"]
        if command[0] == "spark-class":  # a Spark daemon from the pyspark package's own Spark
            assert (spark_home / "bin" / "spark-class").exists()
            assert command[1] in SPARK_DAEMONS, f"{service_name}: {command[1]}"
            assert command[1].replace(".", "/") + ".class" in classes, f"{service_name}: no class {command[1]}"
            continue
        assert command[:2] == ["python", "-m"], service_name
        module = command[2]
        assert importlib.util.find_spec(module) is not None, f"{service_name}: no module {module}"
        if module == "dashboard":
            dashboard_args(command[3:])  # exits (fails the test) on an unknown option
        else:
            PARSERS[module]().parse_args(command[3:])


def test_dockerfiles_copy_what_they_run():
    for dockerfile in DOCKER.glob("Dockerfile.*"):
        text = dockerfile.read_text()
        copied = set(re.findall(r"^COPY (\S+?)/? ", text, re.M))
        for module in re.findall(r'"-m", "(\w+)"', text):
            assert module in copied, f"{dockerfile.name} runs {module} but does not copy it"
        for path in copied:
            assert (DOCKER.parent / path).exists(), f"{dockerfile.name} copies missing {path}"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_health_checks_send_the_token_as_the_project_does(name):
    """Every health check is ``python -m model_api.healthcheck``, which sends $TWEETSENT_SERVICE_TOKEN."""
    services = load(name)["services"]
    checked = {n: s["healthcheck"]["test"] for n, s in services.items() if "healthcheck" in s}
    assert checked and all(c[:4] == ["CMD", "python", "-m", "model_api.healthcheck"] for c in checked.values()), checked
    for n in checked:
        assert "TWEETSENT_SERVICE_TOKEN" in services[n].get("environment", []), n
    assert "TWEETSENT_SERVICE_TOKEN" in services["stream"].get("environment", [])
    dockerfile = (DOCKER / "Dockerfile.model_api").read_text()
    assert 'CMD ["python", "-m", "model_api.healthcheck"' in dockerfile and "COPY model_api/" in dockerfile
