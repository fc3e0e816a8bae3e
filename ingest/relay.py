"""Hand tweets to the Spark job: append them to the durable spool (the default), or serve them over
a plain TCP socket to Spark's socket source (at most once: kept only in memory on both sides).

:func:`write_records` paces records into a :class:`~ingest.spool.Spool`; :class:`SpoolTicker`
seals its segments on time. :class:`SocketRelay` is the TCP server; the Spark job connects as a
client. Tweets wait in a bounded buffer while no
client is connected, so nothing is lost when Spark connects late or reconnects: a replay blocks
when the buffer is full (``overflow="block"``), a live source drops the oldest tweets and counts
them (``overflow="drop-oldest"``).
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.spool import Record, Spool, SpoolError, SpoolFull
from sentiment.schema import Tweet

log = logging.getLogger(__name__)


@dataclass
class RelayStats:
    produced: int = 0
    sent: int = 0
    dropped: int = 0
    clients: int = 0


def stop_on_sigterm() -> threading.Event:
    """An event that SIGTERM sets: a run checks it and ends cleanly (call from the main thread)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


class TweetBuffer:
    """A bounded FIFO of encoded lines shared by one producer and one sender."""

    def __init__(self, capacity: int, overflow: str = "block") -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, got {capacity}")
        if overflow not in ("block", "drop-oldest"):
            raise ValueError(f"overflow must be 'block' or 'drop-oldest', got {overflow!r}")
        self.capacity = capacity
        self.overflow = overflow
        self.dropped = 0
        self._items: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, line: bytes, timeout: float | None = None) -> bool:
        """Add a line; return False if the buffer was closed (or a blocking put timed out)."""
        with self._cond:
            if self.overflow == "block":
                if not self._cond.wait_for(lambda: self._closed or len(self._items) < self.capacity, timeout):
                    return False
            elif len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            if self._closed:
                return False
            self._items.append(line)
            self._cond.notify_all()
            return True

    def take(self, max_items: int, timeout: float) -> list[bytes]:
        """Remove and return up to ``max_items`` lines, waiting up to ``timeout`` for the first."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            out = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._cond.notify_all()
            return out

    def give_back(self, lines: list[bytes]) -> None:
        """Return unsent lines to the front, in order (a client went away mid-send)."""
        with self._cond:
            self._items.extendleft(reversed(lines))
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_empty(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._items, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class SocketRelay:
    """Listens on ``host:port`` and streams the buffer's lines to one client at a time.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``port=0`` picks a free port,
    available as :attr:`port` after start.
    """

    def __init__(self, host: str, port: int, buffer: TweetBuffer) -> None:
        self.host = host
        self.buffer = buffer
        self.stats = RelayStats()
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="relay-sender", daemon=True)
        self.connected = threading.Event()
        self._last_at = 0.0

    def __enter__(self) -> SocketRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        log.info("relay listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        self._stop.set()
        self.buffer.close()
        self._thread.join(timeout=5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.clients += 1
            log.info("client %s:%d connected", *addr[:2])
            self.connected.set()
            try:
                self._send_to(conn)
            finally:
                self.connected.clear()
                conn.close()
                log.info("client %s:%d disconnected; %d tweet(s) wait in the buffer", *addr[:2], len(self.buffer))

    def _send_to(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            # A client that went away must be noticed before sending, or the next chunk would be
            # written into a dead socket and lost. The Spark job never writes, so readable = closed.
            lines = self.buffer.take(512, timeout=0.2)
            if _peer_closed(conn):
                self.buffer.give_back(lines)
                return
            if not lines:
                continue
            # The send time never goes back, even when the clock does (the job's watermark runs on it).
            self._last_at = max(self._last_at, time.time())
            payload = b"".join(_stamp(line, self._last_at) for line in lines)
            try:
                conn.sendall(payload)
            except OSError:
                # The chunk may be partly delivered; resend all of it to the next client rather
                # than lose any (so a tweet can repeat, and only after a disconnect).
                self.buffer.give_back(lines)
                return
            self.stats.sent += len(lines)


def _peer_closed(conn: socket.socket) -> bool:
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _stamp(line: bytes, at: float) -> bytes:
    """Add the send time ``at`` (epoch seconds) to an encoded JSON object line."""
    if not line.endswith(b"}\n"):
        return line
    return line[:-2] + b', "relayed_at": ' + f"{at:.3f}".encode() + b"}\n"


def feed(
    tweets: Iterable[Tweet],
    buffer: TweetBuffer,
    rate: float = 0.0,
    stats: RelayStats | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Put tweets into the buffer, paced at ``rate`` tweets per second (0: no pacing).

    Returns the number of tweets put. Stops early (within a fraction of a second, even while a
    full blocking buffer waits for a client) when ``stop`` is set or the buffer closes.
    """
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.monotonic()
    count = 0
    for tweet in tweets:
        if stop is not None and stop.is_set():
            break
        if interval:
            delay = started + count * interval - time.monotonic()
            if delay > 0 and (stop.wait(delay) if stop is not None else time.sleep(delay)):
                break
        line = tweet.to_json_line()
        while not buffer.put(line, timeout=0.2):
            if buffer.closed or (stop is not None and stop.is_set()):
                return count
        count += 1
        if stats is not None:
            stats.produced = count
    return count


def buffer_emitter(buffer: TweetBuffer, stats: RelayStats) -> Callable[[Tweet], None]:
    """The callback a live source hands each tweet to: queue its line and count it."""

    def emit(tweet: Tweet) -> None:
        buffer.put(tweet.to_json_line())
        stats.produced += 1

    return emit


@dataclass
class SpoolStats:
    written: int = 0
    errors: int = 0
    waits: int = 0


def write_records(
    records: Iterable[Record],
    spool: Spool,
    rate: float = 0.0,
    stop: threading.Event | None = None,
    stats: SpoolStats | None = None,
    chunk: int = 256,
) -> int:
    """Append records to the spool, paced at ``rate`` per second (0: in chunks, as fast as the disk).

    While the spool holds too much unread data (:class:`~ingest.spool.SpoolFull`) the writer waits
    and says so every 10 s; nothing is dropped. Returns the number of records written.
    """
    stats = stats if stats is not None else SpoolStats()
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.monotonic()
    pending: list[Record] = []

    def put(batch: list[Record]) -> bool:
        warned = 0.0
        while True:
            try:
                spool.append(batch)
                break
            except SpoolFull as e:
                stats.waits += 1
                if time.monotonic() - warned >= 10:
                    log.warning("waiting: %s", e)
                    warned = time.monotonic()
                if stop is not None and stop.wait(0.5):
                    return False
        stats.written += len(batch)
        stats.errors += sum(1 for r in batch if r.error)
        return True

    for record in records:
        if stop is not None and stop.is_set():
            break
        if interval:
            delay = started + stats.written * interval - time.monotonic()
            if delay > 0 and (stop.wait(delay) if stop is not None else time.sleep(delay)):
                break
            if not put([record]):
                break
            continue
        pending.append(record)
        if len(pending) >= chunk:
            if not put(pending):
                pending = []
                break
            pending = []
    if pending:
        put(pending)
    return stats.written


class SpoolTicker:
    """Seals the spool's open segment on time and prunes its archive, from a background thread."""

    def __init__(self, spool: Spool, prune_every: float = 60.0) -> None:
        self.spool = spool
        self.prune_every = prune_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-ticker", daemon=True)

    def __enter__(self) -> SpoolTicker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pruned_at = 0.0
        while not self._stop.wait(min(0.1, self.spool.segment_seconds / 2)):
            try:
                self.spool.tick()
                if time.monotonic() - pruned_at >= self.prune_every:
                    pruned_at = time.monotonic()
                    if deleted := self.spool.prune():
                        log.info("retention: deleted %d archived segment(s)", deleted)
            except SpoolError as e:
                log.error("%s", e)


class LiveSpoolWriter:
    """Moves a live source's tweets from the memory buffer into the spool, from a background thread.

    While the spool is full (:class:`~ingest.spool.SpoolFull`) the tweets wait in the buffer. Any
    other failure (a full disk, a folder gone, a bug) is kept in :attr:`error` and sets ``stop``, so
    that the relay stops and exits with status 3 instead of dropping tweets without a word.
    """

    def __init__(self, spool: Spool, buffer: TweetBuffer, stop: threading.Event, max_line_bytes: int) -> None:
        self.spool, self.buffer, self.stop = spool, buffer, stop
        self.max_line_bytes = max_line_bytes
        self.written = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        from ingest.replay import line_record

        reported = 0
        try:
            while not (self.stop.is_set() and not len(self.buffer)):
                lines = self.buffer.take(512, timeout=0.2)
                records = [line_record(line.rstrip(b"\n"), "api", self.max_line_bytes) for line in lines]
                if records and not self._append(records):
                    self.buffer.give_back(lines)
                    return
                if self.buffer.dropped > reported:
                    log.warning("memory buffer full: %d oldest tweet(s) dropped so far", self.buffer.dropped)
                    reported = self.buffer.dropped
        except BaseException as e:  # every failure stops the relay, never a silent drop
            self.error = e
            log.error("the spool writer failed, stopping the relay: %s", e)
            self.stop.set()

    def _append(self, records: list[Record]) -> bool:
        """Append, waiting while the spool is full; False if stopped meanwhile."""
        while True:
            try:
                self.spool.append(records)
                self.written += len(records)
                return True
            except SpoolFull as e:
                log.warning("waiting: %s (%d tweet(s) held in memory)", e, len(self.buffer))
                if self.stop.wait(1.0):
                    return False
