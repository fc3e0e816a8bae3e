import pytest

from sentiment.config import DEFAULT_CONFIG_FILE, Config, ConfigError, load_config

pytestmark = pytest.mark.unit


def test_shipped_file_matches_the_defaults():
    # conf/pipeline.toml documents every setting; its values are the dataclass defaults.
    assert load_config(DEFAULT_CONFIG_FILE, env={}) == Config()


def test_environment_overrides(tmp_path):
    config = load_config(
        env={"TWEETSENT_STREAM__TRIGGER_SECONDS": "5", "TWEETSENT_SERVICE__PORT": "9100", "TWEETSENT_BAND__LOW": "0.35"}
    )
    assert config.stream.trigger_seconds == 5.0
    assert config.service.port == 9100
    assert config.band.low == 0.35
    assert config.service_url == "http://127.0.0.1:9100"


def test_service_url_override():
    config = load_config(env={"TWEETSENT_STREAM__SERVICE_URL": "http://model:8000/"})
    assert config.service_url == "http://model:8000"


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[stream]\ntriger_seconds = 3\n")
    with pytest.raises(ConfigError, match="triger_seconds"):
        load_config(f, env={})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="service.port: expected int"):
        load_config(env={"TWEETSENT_SERVICE__PORT": "eighty"})


def test_out_of_range_band():
    with pytest.raises(ConfigError, match="band"):
        load_config(env={"TWEETSENT_BAND__LOW": "0.8"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_config(tmp_path / "nope.toml", env={})


def test_model_location_finds_directories_from_the_working_directory_or_the_project_root(tmp_path, monkeypatch):
    import dataclasses

    from model_api.model.predictor import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, FULL_MODEL_DIR, model_location

    def located(model: str) -> str:
        config = Config()
        return model_location(dataclasses.replace(config, service=dataclasses.replace(config.service, model=model)))

    monkeypatch.chdir(tmp_path)  # not the project root
    assert located("") == str(DEFAULT_MODEL_DIR) == str(FULL_MODEL_DIR)
    assert located("models/fast") == str(FAST_MODEL_DIR)
    (tmp_path / "mine").mkdir()
    assert located("mine") == "mine"  # the working directory first
    assert located("bert-base-uncased") == "bert-base-uncased"  # not a directory: a hub name


def test_show_config_prints_each_setting_on_its_line(capsys, monkeypatch):
    from sentiment.show_config import main

    monkeypatch.setenv("TWEETSENT_SERVICE__PORT", "8123")
    monkeypatch.setenv("TWEETSENT_RELAY__PORT", "9100")
    assert main(["service_url", "relay.port", "stream.service_url", "band.low"]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:8123\n9100\n\n0.4\n"


@pytest.mark.parametrize("key", ["relay", "relay.nope", "resolve", "stream._private"])
def test_show_config_names_a_key_that_is_not_a_setting(key, capsys):
    from sentiment.show_config import main

    assert main([key]) == 2
    assert repr(key) in capsys.readouterr().err


def test_the_service_token_from_the_environment_then_the_file(tmp_path):
    from sentiment.config import ServiceConfig, service_token

    (tmp_path / "token").write_text("  file-token \n")
    service = ServiceConfig(token_file=str(tmp_path / "token"))
    assert service_token(service, env={"TWEETSENT_SERVICE_TOKEN": "env-token"}) == "env-token"
    assert service_token(service, env={}) == "file-token"
    assert service_token(ServiceConfig(), env={}) == ""


def test_an_unreadable_or_empty_token_file_is_named(tmp_path):
    from sentiment.config import ServiceConfig, service_token

    with pytest.raises(ConfigError, match="missing"):
        service_token(ServiceConfig(token_file=str(tmp_path / "missing")), env={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        service_token(ServiceConfig(token_file=str(tmp_path / "empty")), env={})


def test_open_paths_must_be_paths():
    from sentiment.config import ServiceConfig

    assert ServiceConfig(open_paths="/health, /metrics").open_path_list == ("/health", "/metrics")
    assert ServiceConfig(open_paths="").open_path_list == ()
    with pytest.raises(ConfigError, match="open_paths"):
        ServiceConfig(open_paths="health")


def test_serving_settings_are_checked():
    from sentiment.config import ServiceConfig

    with pytest.raises(ConfigError, match="start_precision"):
        ServiceConfig(start_precision="int8-static")  # the start engine must be ready at once
    with pytest.raises(ConfigError, match="latency_budget_ms"):
        ServiceConfig(latency_budget_ms=-1)


@pytest.mark.parametrize(
    ("cores", "workers", "engines", "expected"),
    [
        (2, 0, 0, (2, 1, 1)),
        (16, 0, 0, (4, 4, 1)),
        (1, 0, 0, (1, 1, 1)),
        (8, 3, 0, (3, 2, 1)),
        (2, 1, 0, (1, 2, 1)),
        (8, 1, 2, (1, 2, 4)),
    ],
)
def test_workers_and_their_model_processes_share_the_cores(monkeypatch, cores, workers, engines, expected):
    from model_api.model.torch_setup import torch_threads

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    config = load_config(
        env={"TWEETSENT_SERVICE__WORKERS": str(workers), "TWEETSENT_SERVICE__ENGINE_PROCESSES": str(engines)}
    )
    service = config.service
    assert (service.worker_processes, service.engines_per_worker, torch_threads(config)) == expected
    with pytest.raises(ConfigError, match="service.workers must be >= 0"):
        load_config(env={"TWEETSENT_SERVICE__WORKERS": "-1"})


def test_the_job_refuses_limits_that_outgrow_the_service():
    from stream.scoring import check_client_limits

    check_client_limits(Config())  # the shipped defaults fit
    env = {"TWEETSENT_STREAM__REQUEST_TIMEOUT_SECONDS": "30"}
    with pytest.raises(
        ConfigError, match=r"request_timeout_seconds \(30\) must be longer than service.timeout_seconds"
    ):
        check_client_limits(load_config(DEFAULT_CONFIG_FILE, env=env))
    env = {"TWEETSENT_SERVICE__MAX_BODY_BYTES": "65536"}
    with pytest.raises(ConfigError, match="request_max_bytes .* must be below service.max_body_bytes"):
        check_client_limits(load_config(DEFAULT_CONFIG_FILE, env=env))


@pytest.mark.parametrize(
    ("word", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False), (" ON ", True)],
)
def test_boolean_words_in_any_case(word, expected):
    assert load_config(env={"TWEETSENT_SERVICE__FAST_START": word}).service.fast_start is expected


@pytest.mark.parametrize("word", ["maybe", "", "2", "enabled"])
def test_a_bad_boolean_is_an_error_naming_the_key(word):
    with pytest.raises(ConfigError, match="service.fast_start: expected true or false"):
        load_config(env={"TWEETSENT_SERVICE__FAST_START": word})


def test_a_bad_boolean_in_the_file_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[trends]\nenabled = "perhaps"\n')
    with pytest.raises(ConfigError, match="trends.enabled"):
        load_config(f, env={})


def test_a_server_other_than_granian_is_named_with_where_to_read_why(monkeypatch):
    monkeypatch.setenv("TWEETSENT_SERVICE__SERVER", "gunicorn")
    with pytest.raises(
        ConfigError, match=r"service.server must be one of \('granian',\) \(docs/serving.md\), got 'gunicorn'"
    ):
        load_config()


def test_compaction_settings_are_read_and_checked():
    config = load_config(env={"TWEETSENT_COMPACTION__EVERY_BATCHES": "50", "TWEETSENT_COMPACTION__TARGET_MB": "8"})
    assert config.compaction.every_batches == 50 and config.compaction.target_bytes == 8 << 20
    with pytest.raises(ConfigError, match="compaction.every_batches"):
        load_config(env={"TWEETSENT_COMPACTION__EVERY_BATCHES": "0"})
