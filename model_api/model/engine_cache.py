"""Compiled engines kept on disk, so that only the first start of a model on a machine compiles.

The compiled int8 engines (:class:`model_api.model.engines.CompiledInt8Engine`) take a minute or more to
quantize and compile. :mod:`model_api.model.engine_setup` compiles the quantized model ahead of time by
AOTInductor into one package file and keeps it here, where a later start finds it and loads it
(:class:`model_api.model.engines.PackagedEngine`) in well under a second. An entry is keyed by everything
the compiled code depends on: the model's files (weights, config, calibration tweets), the torch
version, the CPU's features and the engine settings (precision, packing, maximum length, mixed
bf16), so a new model, a torch upgrade or another machine builds its own entry.

An entry is a folder ``<cache>/<key>/`` holding ``engine.pt2`` and ``meta.json`` (its key
fields and the package's SHA-256). It is written under a temporary name and renamed into place,
so a reader never sees half of one; a build holds ``<cache>/<key>.lock`` so that two workers do
not compile the same entry at once (the second waits, then loads it). An entry whose checksum or
fields do not match, or which fails to load, is removed and built again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Bumped when the way a package is built changes, so that older entries are not used.
FORMAT = 1
PACKAGE_FILE = "engine.pt2"
META_FILE = "meta.json"
# The files of a model directory whose content the compiled engine depends on.
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "calibration.txt", "tweet_sentiment.json")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "tweet-sentiment" / "engines"


def cache_dir(setting: str) -> Path:
    """The cache folder a ``service.engine_cache`` setting names (empty: the default one)."""
    return Path(setting).expanduser() if setting else default_cache_dir()


def cpu_features() -> str:
    """The CPU features compiled code depends on: torch's vector ISA, and native bf16 and AMX."""
    checks = ("avx2", "avx512", "avx512_bf16", "vnni", "amx_tile", "amx_fp16")
    found = [name for name in checks if getattr(torch.cpu, f"_is_{name}_supported", lambda: False)()]
    return ",".join([torch.backends.cpu.get_cpu_capability(), *found])


def model_digest(model_path: str | Path, calibration: Path | None = None) -> str:
    """SHA-256 of a model directory's files that the engine depends on (and of the calibration
    file it was quantized with, when that lies elsewhere); of the name for a hub model."""
    digest = hashlib.sha256()
    folder = Path(model_path)
    files = [folder / name for name in MODEL_FILES if (folder / name).is_file()] if folder.is_dir() else []
    if calibration is not None and calibration.is_file() and calibration not in files:
        files.append(calibration)
    if not files:
        digest.update(str(model_path).encode())
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything a compiled engine depends on."""

    model: str  # model_digest
    precision: str
    packed: bool
    max_length: int
    mixed_bf16: bool
    torch_version: str = torch.__version__
    cpu: str = ""  # cpu_features(); filled in by __post_init__ when empty
    format: int = FORMAT

    def __post_init__(self) -> None:
        if not self.cpu:
            object.__setattr__(self, "cpu", cpu_features())

    @property
    def name(self) -> str:
        fields = json.dumps(asdict(self), sort_keys=True)
        return f"{self.precision}-{hashlib.sha256(fields.encode()).hexdigest()[:20]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class EngineCache:
    """A folder of compiled engine packages (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def entry(self, key: EngineKey) -> Path:
        return self.folder / key.name

    def package(self, key: EngineKey) -> Path | None:
        """The package of ``key`` if a whole, matching entry is cached; an entry that does not
        match (checksum, fields) is removed."""
        entry = self.entry(key)
        try:
            meta = json.loads((entry / META_FILE).read_text())
        except FileNotFoundError:
            if entry.exists():
                self.discard(key, "it has no meta.json")
            return None
        except (OSError, ValueError) as e:
            self.discard(key, f"its meta.json is unreadable ({e})")
            return None
        package = entry / PACKAGE_FILE
        if meta.get("key") != asdict(key):
            self.discard(key, "its key fields differ")
            return None
        if not package.is_file() or file_sha256(package) != meta.get("sha256"):
            self.discard(key, "its package is missing or its checksum differs")
            return None
        return package

    def discard(self, key: EngineKey, why: str) -> None:
        """Remove an entry (renamed away first, so that a reader sees it whole or not at all)."""
        entry = self.entry(key)
        log.warning("engine cache entry %s is unusable (%s): removing it, it will be built again", entry, why)
        trash = self.folder / f".trash-{key.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            entry.rename(trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def lock(self, key: EngineKey) -> Iterator[None]:
        """Held while ``key`` is built: another process building it waits here."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{key.name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def store(self, key: EngineKey, build: Callable[[Path], None]) -> Path:
        """Build ``key``'s package with ``build(path)`` into a temporary folder, then rename the
        folder into place (atomically). Returns the package's path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key.name}-", dir=self.folder))
        tmp.chmod(0o755)  # readable by the other users of a shared cache, as the files in it
        try:
            build(tmp / PACKAGE_FILE)
            meta = {"key": asdict(key), "sha256": file_sha256(tmp / PACKAGE_FILE), "built": time.time()}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
            if self.entry(key).exists():
                self.discard(key, "a new build replaces it")
            tmp.rename(self.entry(key))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.entry(key) / PACKAGE_FILE
