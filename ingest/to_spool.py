"""The relay's runs into the durable spool: a finite replay that resumes, and live tweets.

Usage: ``replay_to_spool(records, src, relay, config, args)``; ``live_to_spool(args, token, keywords, relay, config)``

A finite replay resumes after the last record an earlier run of the same source wrote (the records
carry their position), marks the spool complete at its end, and does nothing when run again after
that. Live tweets go from the API's callback into a bounded memory buffer, from which a writer
thread appends them, so a slow disk never stalls the API connection.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

from ingest.relay import (
    LiveSpoolWriter,
    RelayStats,
    SpoolStats,
    SpoolTicker,
    TweetBuffer,
    buffer_emitter,
    stop_on_sigterm,
    write_records,
)
from ingest.spool import Spool, SpoolError
from sentiment.config import Config, RelayConfig
from sentiment.spool_format import archive_dir


def open_spool(relay: RelayConfig, config: Config, start_over: bool) -> Spool:
    """Lock and open the configured spool (emptied first with ``start_over``)."""
    folder = config.resolve(relay.spool)
    spool = Spool(
        folder,
        segment_records=relay.segment_records,
        segment_seconds=relay.segment_seconds,
        max_pending_bytes=relay.max_pending_bytes,
        retention_hours=relay.retention_hours,
        retention_bytes=relay.retention_bytes,
    )
    spool.open(start_over=start_over)
    if start_over:
        print(f"relay: emptied {folder} and {archive_dir(folder)} (new spool {spool.spool_id})", flush=True)
    return spool


def replay_to_spool(records, src: str, relay: RelayConfig, config: Config, args: argparse.Namespace) -> int:
    """Append a finite, numbered record stream to the spool, resuming after what is already there."""
    spool = open_spool(relay, config, args.start_over)
    done = spool.complete()
    limit = getattr(args, "limit", None)
    if done and done.get("src") == src and done.get("limit") == limit:
        print(
            f"relay: {args.file} is already wholly in {spool.folder} ({done['records']} record(s)); nothing to do. "
            "Use --start-over to relay it again.",
            flush=True,
        )
        return 0
    spool.clear_complete()
    last = spool.last or {}
    skip = last["seq"] + 1 if last.get("src") == src and last.get("seq") is not None else 0
    stop = stop_on_sigterm()
    stats = SpoolStats()
    print(
        f"relay: writing {args.file} to {spool.folder} at {relay.rate or 'max'} tweets/s"
        + (f", resuming after record {skip}" if skip else ""),
        flush=True,
    )
    numbered = (dataclasses.replace(r, src=src) for r in itertools.islice(records, skip, None))
    try:
        with SpoolTicker(spool):
            write_records(numbered, spool, relay.rate, stop, stats)
            if not stop.is_set():
                spool.mark_complete(src, skip + stats.written, limit)
    except KeyboardInterrupt:
        pass
    finally:
        spool.close()
    state = "complete" if not stop.is_set() else "stopped"
    print(
        f"relay: {stats.written} record(s) written ({stats.errors} to be quarantined), {skip} already there; "
        f"replay {state}; spool offsets up to {spool.next_offset}",
        flush=True,
    )
    return 0


def live_to_spool(args: argparse.Namespace, token: str, keywords: list[str], relay: RelayConfig, config: Config) -> int:
    """Live tweets into the spool: the API callback queues them in memory, a writer appends them."""
    from ingest.twitter import relay_live

    spool = open_spool(relay, config, args.start_over)
    spool.clear_complete()
    buffer = TweetBuffer(relay.buffer_size, overflow="drop-oldest")
    stop = stop_on_sigterm()
    stats = RelayStats()
    writer = LiveSpoolWriter(spool, buffer, stop, relay.max_line_bytes)
    emit = buffer_emitter(buffer, stats)

    print(f"relay: writing tweets about {keywords} to {spool.folder} ({args.mode})", flush=True)
    try:
        with SpoolTicker(spool):
            writer.start()
            try:
                relay_live(args.mode, token, keywords, emit, stop, args.lang, args.no_retweets, args.poll_interval)
            finally:
                writer.join(timeout=5)
    finally:
        spool.close()
    print(
        f"relay: {stats.produced} tweet(s) received, {writer.written} written to the spool, "
        f"{buffer.dropped} dropped (memory buffer full), {len(buffer)} unwritten",
        flush=True,
    )
    if writer.error is not None:
        raise SpoolError(f"the spool writer failed ({type(writer.error).__name__}): {writer.error}")
    return 0
