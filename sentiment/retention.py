"""How the job's outputs stay bounded over months: the settings of merging their small files.

Usage: ``load_config().compaction`` (section ``[compaction]`` of ``conf/pipeline.toml``), read by
:class:`stream.compaction.Compactor`; docs/operations.md, "Running for months", says what they bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentiment.config_error import ConfigError


@dataclass(frozen=True)
class CompactionConfig:
    """When a sink's partitions are merged, into files of what size, and how long a replaced version stays."""

    enabled: bool = True
    every_batches: int = 300  # merge the partitions written since the last merge every this many batches
    target_mb: float = 64.0  # merged files grow to about this size, then a new one starts
    keep_seconds: float = 600.0  # a partition's replaced version is deleted this long after (readers still on it)

    def __post_init__(self) -> None:
        for ok, message in (
            (self.every_batches >= 1, f"compaction.every_batches must be at least 1, got {self.every_batches}"),
            (self.target_mb > 0, f"compaction.target_mb must be > 0, got {self.target_mb}"),
            (self.keep_seconds >= 0, f"compaction.keep_seconds must be >= 0, got {self.keep_seconds}"),
        ):
            if not ok:
                raise ConfigError(message)

    @property
    def target_bytes(self) -> int:
        return int(self.target_mb * (1 << 20))
