"""Configuration: frozen dataclasses, loaded from ``conf/pipeline.toml`` with environment overrides.

Every setting lives in one section of the TOML file and can be overridden by an environment variable
``TWEETSENT_<SECTION>__<KEY>`` (for example ``TWEETSENT_STREAM__TRIGGER_SECONDS=5``). ``TWEETSENT_CONFIG`` names
another TOML file to load instead of ``conf/pipeline.toml``. Command-line options of each entry point override both.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sentiment.config_error import ConfigError
from sentiment.labels import BAND_HIGH, BAND_LOW, NeutralBand
from sentiment.logs import LogsConfig
from sentiment.retention import CompactionConfig

ENV_PREFIX = "TWEETSENT_"
AUTO_WORKERS_MAX = 4  # automatic workers / model processes per worker: at most this many (a model is about 1 GB)
TOKEN_ENV = ENV_PREFIX + "SERVICE_TOKEN"  # the model service's bearer token (see service_token)
SERVERS = ("granian",)  # one server for the one front, an ASGI application (docs/serving.md)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "conf" / "pipeline.toml"
TRANSPORTS = ("spool", "socket")
# Inference engines of the model service (model_api/model/engines.py); those compiled at start-up, which the
# engine cache keeps (engine_cache.py); those ready at once to serve while one is compiled (eager torch).
PRECISIONS = ("fp32", "bf16", "int8", "int8-dynamic", "int8-static", "onnx", "onnx-int8")
COMPILED_PRECISIONS = ("int8-dynamic", "int8-static")
START_PRECISIONS = ("fp32", "bf16", "int8")
DURATION_UNITS = ("second", "minute", "hour", "day")  # of trends.window and .watermark, singular or plural


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class ServiceConfig:
    """The model REST service (``python -m model_api``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = ""  # empty: the bundled 6-layer model in models/default (models/fast: 3 layers)
    workers: int = 0  # HTTP worker processes; 0 = one per core, at most AUTO_WORKERS_MAX
    max_batch: int = 1024
    max_body_bytes: int = 2 * 1024 * 1024
    max_text_chars: int = 10_000
    inference_batch: int = 64
    pack_texts: bool = True  # BERT models: several texts per row of a forward pass, no padding
    timeout_seconds: int = 120
    max_queued_texts: int = 8192  # texts a worker holds (queued or scored) at once; beyond: 503 with Retry-After
    server: str = "granian"  # HTTP server: granian (Rust HTTP, running the ASGI front model_api.front.asgi)
    threads: int = 256  # threads calling a model loaded in the worker itself (engine_process = false)
    torch_threads: int = 0  # intra-op threads of each worker's engine; 0 = cores / workers
    precision: str = "int8-static"  # see PRECISIONS and model_api/model/engines.py
    engine_process: bool = True  # run each worker's model in a child process (no GIL shared with HTTP)
    engine_processes: int = 0  # model processes per worker (engine_process); 0 = cores / workers, at most 4
    micro_batch_max: int = 256  # most texts one shared prediction takes from concurrent requests
    micro_batch_wait_ms: float = 5.0  # how long the first queued text waits for company
    token_file: str = ""  # a file holding the bearer token; $TWEETSENT_SERVICE_TOKEN wins; both empty: no token
    open_paths: str = "/health,/metrics,/openapi.json"  # comma-separated paths answered without the token
    engine_watchdog_seconds: float = 30.0  # a model process silent this long with work waiting is killed; 0 = off
    engine_restart_seconds: float = 1.0  # first wait before restarting a dead model process (doubles, up to 30 s)
    retry_after_seconds: int = 5  # Retry-After of a 503 while the model is unavailable
    log_interval_seconds: float = 60.0  # each kind of error is logged once per interval, with a count
    latency_budget_ms: float = 100.0  # while single texts wait: a micro-batch takes what it scores in this time
    engine_cache: str = ""  # AOTInductor packages of the compiled engines are kept here; empty: none (compile at start)
    fast_start: bool = True  # compiled engines: serve with start_precision while the compiled one is prepared
    start_precision: str = "int8"  # START_PRECISIONS: the engine serving until the compiled one is ready

    def __post_init__(self) -> None:
        _check(self.precision in PRECISIONS, f"service.precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(
            self.server in SERVERS, f"service.server must be one of {SERVERS} (docs/serving.md), got {self.server!r}"
        )
        _check(self.threads >= 1, f"service.threads must be at least 1, got {self.threads}")
        _check(self.torch_threads >= 0, f"service.torch_threads must be >= 0 (0 = automatic), got {self.torch_threads}")
        _check(
            self.start_precision in START_PRECISIONS,
            f"service.start_precision must be one of {START_PRECISIONS}, got {self.start_precision!r}",
        )
        _check(self.latency_budget_ms >= 0, f"service.latency_budget_ms must be >= 0, got {self.latency_budget_ms}")
        _check(self.micro_batch_max >= 1, f"service.micro_batch_max must be at least 1, got {self.micro_batch_max}")
        _check(
            self.micro_batch_wait_ms >= 0, f"service.micro_batch_wait_ms must be >= 0, got {self.micro_batch_wait_ms}"
        )
        _check(0 <= self.port <= 65535, f"service.port must be 0..65535, got {self.port}")
        _check(self.workers >= 0, f"service.workers must be >= 0 (0 = one per core), got {self.workers}")
        _check(
            self.engine_processes >= 0,
            f"service.engine_processes must be >= 0 (0 = cores / workers), got {self.engine_processes}",
        )
        _check(self.max_batch >= 1, f"service.max_batch must be at least 1, got {self.max_batch}")
        _check(
            self.max_queued_texts >= self.max_batch,
            f"service.max_queued_texts ({self.max_queued_texts}) must be at least service.max_batch ({self.max_batch})",
        )
        _check(self.max_body_bytes >= 1024, f"service.max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        _check(self.inference_batch >= 1, f"service.inference_batch must be at least 1, got {self.inference_batch}")
        _check(self.engine_watchdog_seconds >= 0, "service.engine_watchdog_seconds must be >= 0 (0 = off)")
        _check(self.engine_restart_seconds > 0, "service.engine_restart_seconds must be > 0")
        _check(self.retry_after_seconds >= 1, "service.retry_after_seconds must be at least 1")
        _check(self.log_interval_seconds > 0, "service.log_interval_seconds must be > 0")
        bad = [p for p in self.open_path_list if not p.startswith("/")]
        _check(not bad, f"service.open_paths must be comma-separated paths starting with '/', got {bad}")

    @property
    def worker_processes(self) -> int:
        """``workers``, or when 0, one per core up to :data:`AUTO_WORKERS_MAX`."""
        return self.workers or max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX))

    @property
    def engines_per_worker(self) -> int:
        """``engine_processes``, or when 0, the cores left to each worker (at least 1, at most
        :data:`AUTO_WORKERS_MAX`); 1 without ``engine_process``.

        One single-threaded model per core beats one model using every core once HTTP shares the
        cores (no thread of a forward pass waits at a barrier for one the HTTP work preempted),
        and a pool of them in one worker gives every connection all of them (docs/serving.md,
        "Workers and model processes"). Each model process holds about 1 GB.
        """
        if not self.engine_process:
            return 1
        return self.engine_processes or max(1, min((os.cpu_count() or 1) // self.worker_processes, AUTO_WORKERS_MAX))

    @property
    def open_path_list(self) -> tuple[str, ...]:
        """The paths answered without the bearer token."""
        return tuple(p.strip() for p in self.open_paths.split(",") if p.strip())

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class RelayConfig:
    """The socket relay (``python -m ingest``)."""

    transport: str = "spool"  # spool: durable log on disk (exactly once); socket: Spark's socket source (at most once)
    spool: str = "output/spool"  # the log's folder; the job archives what it has committed to <spool>-done
    host: str = "127.0.0.1"  # transport = "socket" only
    port: int = 9009  # transport = "socket" only
    rate: float = 50.0  # tweets per second; 0 sends as fast as the client reads
    buffer_size: int = 100_000
    segment_records: int = 1000  # a spool segment is sealed (made visible to the job) at this many lines...
    segment_seconds: float = 0.5  # ...or this old, whichever comes first
    max_pending_bytes: int = 2 << 30  # unread spool beyond this: a replay waits, a live relay buffers
    retention_hours: float = 24.0  # committed segments are kept this long in <spool>-done...
    retention_bytes: int = 1 << 30  # ...and at most this many bytes of them
    max_line_bytes: int = 65_536  # longer received lines are quarantined (cut to 1,000 characters)

    def __post_init__(self) -> None:
        _check(self.transport in TRANSPORTS, f"relay.transport must be one of {TRANSPORTS}, got {self.transport!r}")
        _check(self.segment_records >= 1, f"relay.segment_records must be at least 1, got {self.segment_records}")
        _check(self.segment_seconds > 0, f"relay.segment_seconds must be > 0, got {self.segment_seconds}")
        _check(self.max_pending_bytes >= 0, "relay.max_pending_bytes must be >= 0 (0 = no limit)")
        _check(self.retention_hours >= 0, "relay.retention_hours must be >= 0")
        _check(self.retention_bytes >= 0, "relay.retention_bytes must be >= 0")
        _check(self.max_line_bytes >= 1024, f"relay.max_line_bytes must be at least 1024, got {self.max_line_bytes}")
        _check(0 <= self.port <= 65535, f"relay.port must be 0..65535, got {self.port}")
        _check(self.rate >= 0, f"relay.rate must be >= 0 (0 = as fast as possible), got {self.rate}")
        _check(self.buffer_size >= 1, f"relay.buffer_size must be at least 1, got {self.buffer_size}")


@dataclass(frozen=True)
class StreamConfig:
    """The Spark job (``python -m stream`` / ``spark-submit stream/job.py``)."""

    service_url: str = ""  # empty: the service's host and port; several replicas: comma-separated URLs
    output: str = "output/tweets"
    quarantine: str = "output/quarantine"
    checkpoint: str = "output/checkpoints"  # one stable checkpoint per output under it: a rerun resumes
    trigger_seconds: float = 2.0
    max_files_per_trigger: int = 20  # spool segments per micro-batch (each holds at most relay.segment_records)
    dedup_minutes: float = 10.0  # a tweet id seen again within this many minutes is dropped
    request_batch: int = 256
    request_max_bytes: int = 1 << 20  # bytes of one request's JSON body: below service.max_body_bytes
    max_text_chars: int = 4000  # longer texts are cut before they are sent (the model reads max_length tokens)
    request_concurrency: int = 2
    request_timeout_seconds: float = 150.0  # longer than service.timeout_seconds: no abandoned work sent twice
    retries: int = 2  # quick retries per request; a longer outage holds the batch (outage_limit_seconds)
    backoff_seconds: float = 0.5
    outage_limit_seconds: float = 0.0  # longest wait for a model service that is down; 0 = wait indefinitely
    replica_cooldown_seconds: float = 10.0  # a replica that failed is skipped this long, then tried again
    shuffle_partitions: int = 2

    def __post_init__(self) -> None:
        _check(self.max_files_per_trigger >= 1, "stream.max_files_per_trigger must be at least 1")
        _check(self.dedup_minutes > 0, f"stream.dedup_minutes must be > 0, got {self.dedup_minutes}")
        _check(self.outage_limit_seconds >= 0, "stream.outage_limit_seconds must be >= 0 (0 = no limit)")
        _check(self.trigger_seconds >= 0, f"stream.trigger_seconds must be >= 0, got {self.trigger_seconds}")
        _check(self.request_batch >= 1, f"stream.request_batch must be at least 1, got {self.request_batch}")
        _check(self.request_max_bytes >= 1024, f"stream.request_max_bytes must be >= 1024: {self.request_max_bytes}")
        _check(self.max_text_chars >= 1, f"stream.max_text_chars must be at least 1, got {self.max_text_chars}")
        _check(self.request_timeout_seconds > 0, "stream.request_timeout_seconds must be > 0")
        _check(self.retries >= 0, f"stream.retries must be >= 0, got {self.retries}")
        _check(
            self.request_concurrency >= 1, f"stream.request_concurrency must be >= 1, got {self.request_concurrency}"
        )
        _check(self.shuffle_partitions >= 1, "stream.shuffle_partitions must be at least 1")
        _check(self.replica_cooldown_seconds >= 0, "stream.replica_cooldown_seconds must be >= 0")


@dataclass(frozen=True)
class BandConfig:
    """Edges of the neutral band; both are inclusive."""

    low: float = BAND_LOW
    high: float = BAND_HIGH

    def __post_init__(self) -> None:
        try:
            NeutralBand(self.low, self.high)
        except ValueError as e:
            raise ConfigError(f"band: {e}") from None

    def band(self) -> NeutralBand:
        return NeutralBand(self.low, self.high)


def service_token(service: ServiceConfig, env: Mapping[str, str] | None = None) -> str:
    """The service's bearer token: ``$TWEETSENT_SERVICE_TOKEN``, else the first line of
    ``service.token_file``, else "" (no token). The service and its clients read it the same way.

    Raises:
        ConfigError: if ``service.token_file`` is named but cannot be read or is empty.
    """
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    if token or not service.token_file:
        return token
    path = Path(service.token_file)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"service.token_file {path}: cannot read it ({e.strerror})") from None
    _check(bool(token), f"service.token_file {path} is empty; write the token in it or unset the setting")
    return token


@dataclass(frozen=True)
class TrendsConfig:
    """Sentiment per keyword per event-time window (``output/trends``), its alerts and the dashboard."""

    enabled: bool = True  # the job's second query: windows per keyword to output/trends, alerts to output/alerts
    event_time: str = "created_at"  # created_at: the tweet's own time; relayed_at: when the relay took it
    window: str = "1 minute"  # event-time window of one trends row (Spark interval text)
    watermark: str = "2 minutes"  # how late a tweet may come before its window is closed and written
    output: str = "output/trends"
    alerts: str = "output/alerts"
    z_threshold: float = 3.0  # a window alerts when its negative share is this many deviations above baseline
    baseline_windows: int = 30  # the keyword's last windows that make its baseline
    min_baseline_windows: int = 5  # no alert before the keyword has this many baseline windows
    min_count: int = 20  # windows with fewer tweets neither alert nor count in a baseline
    min_std: float = 0.05  # floor of the baseline's deviation, so a flat baseline does not alert on noise
    webhook_url: str = ""  # empty: no webhook; else each batch of alerts is POSTed there as JSON
    webhook_timeout_seconds: float = 5.0
    webhook_retries: int = 3  # retries after the first attempt, with exponential backoff
    dashboard_port: int = 8501  # python -m dashboard; it listens on 127.0.0.1
    dashboard_refresh_seconds: float = 5.0
    dashboard_min_tweets: int = 5  # a chart point (a bucket of windows) from fewer tweets is drawn faded

    def __post_init__(self) -> None:
        _check(
            self.event_time in ("created_at", "relayed_at"),
            f"trends.event_time must be created_at or relayed_at, got {self.event_time!r}",
        )
        for key in ("window", "watermark"):  # Spark's interval text: a positive number and a unit
            number, _, unit = getattr(self, key).strip().partition(" ")
            ok = number.isdigit() and int(number) > 0 and unit.strip().removesuffix("s") in DURATION_UNITS
            _check(ok, f"trends.{key} must be like '1 minute' or '30 seconds', got {getattr(self, key)!r}")
        _check(self.z_threshold > 0, f"trends.z_threshold must be > 0, got {self.z_threshold}")
        _check(self.baseline_windows >= 2, f"trends.baseline_windows must be at least 2, got {self.baseline_windows}")
        _check(
            1 <= self.min_baseline_windows <= self.baseline_windows,
            f"trends.min_baseline_windows must be 1..baseline_windows ({self.baseline_windows}), "
            f"got {self.min_baseline_windows}",
        )
        _check(self.min_count >= 1, f"trends.min_count must be at least 1, got {self.min_count}")
        _check(self.min_std > 0, f"trends.min_std must be > 0, got {self.min_std}")
        _check(
            self.webhook_url == "" or self.webhook_url.startswith(("http://", "https://")),
            f"trends.webhook_url must be empty or an http(s) URL, got {self.webhook_url!r}",
        )
        _check(self.webhook_timeout_seconds > 0, "trends.webhook_timeout_seconds must be > 0")
        _check(self.webhook_retries >= 0, f"trends.webhook_retries must be >= 0, got {self.webhook_retries}")
        _check(0 <= self.dashboard_port <= 65535, f"trends.dashboard_port must be 0..65535, got {self.dashboard_port}")
        _check(self.dashboard_refresh_seconds > 0, "trends.dashboard_refresh_seconds must be > 0")
        _check(
            self.dashboard_min_tweets >= 1,
            f"trends.dashboard_min_tweets must be at least 1, got {self.dashboard_min_tweets}",
        )


@dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    band: BandConfig = field(default_factory=BandConfig)
    trends: TrendsConfig = field(default_factory=TrendsConfig)
    compaction: CompactionConfig = field(default_factory=CompactionConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)

    @property
    def service_url(self) -> str:
        """The service's URL, or the comma-separated URLs of its replicas."""
        urls = (self.stream.service_url or self.service.url).split(",")
        return ",".join(u.strip().rstrip("/") for u in urls if u.strip())

    def resolve(self, path: str) -> Path:
        """A configured path, relative paths taken from the project root."""
        p = Path(path)
        return p if p.is_absolute() else PROJECT_ROOT / p


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _as_bool(section: str, key: str, value: object) -> bool:
    """A TOML boolean, or one of the words of TRUE_WORDS / FALSE_WORDS in any case; anything else is an error."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ConfigError(f"{section}.{key}: expected true or false (or 1/0, yes/no, on/off), got {value!r}")


def _coerce(section: str, key: str, value: object, kind: type) -> object:
    if kind is bool:
        return _as_bool(section, key, value)
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{section}.{key}: expected {kind.__name__}, got {value!r}") from None


def _build(cls: type, section: str, values: Mapping[str, object]) -> object:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{section}]: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**{k: _coerce(section, k, v, hints[k]) for k, v in values.items()})


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration file and apply environment overrides.

    Args:
        path: a TOML file; default ``$TWEETSENT_CONFIG`` or ``conf/pipeline.toml``.
        env: the environment to read overrides from (default ``os.environ``).

    Raises:
        ConfigError: on an unknown section or key, a value of the wrong type or out of range.
        FileNotFoundError: if an explicitly named file does not exist.
    """
    env = os.environ if env is None else env
    explicit = path or env.get(ENV_PREFIX + "CONFIG")
    file = Path(explicit) if explicit else DEFAULT_CONFIG_FILE
    data: dict[str, dict[str, object]] = {}
    if file.is_file():
        with file.open("rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"{file}: {e}") from None
    elif explicit:
        raise FileNotFoundError(f"configuration file not found: {file}")

    sections = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{file}: unknown section(s) {unknown}; known: {sorted(sections)}")
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in sections:
            raise ConfigError(f"{name}: unknown section {section!r}; known: {sorted(sections)}")
        data.setdefault(section, {})[key] = value
    hints = typing.get_type_hints(Config)
    return Config(**{name: _build(hints[name], name, data.get(name, {})) for name in sections})
