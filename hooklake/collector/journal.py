"""The journal: where a request body is made durable before the collector answers.

Each collector process is one *writer* with its own directory ``lake/_journal/<writer>/``,
so two processes never append to the same file. It holds an exclusive ``flock`` on
``<writer>/lock`` for as long as it lives; a writer directory whose lock can be taken belongs
to a dead process and is recovered by the flusher. A flusher holds ``<writer>/flushing`` while it
commits that writer's segments, which it does in order (see :mod:`.flush`).

A writer appends records to ``NNNNNNNN.open``; when the segment is old or large enough it is
*sealed* (renamed to ``NNNNNNNN.seg``) and the flusher may turn it into Parquet. A record is::

    b"HLR1" | header length u32 | body length u32 | crc32(header + body) u32 | header | body

where the header is JSON (``kind``, ``hook``, receive time, selected headers, reject reason)
and the body is the request's raw bytes. A crash can leave a torn last record; it was never
acknowledged, and :func:`read_segment` stops before it.

:class:`GroupCommitter` batches appends from concurrent requests into one ``write`` and one
``fdatasync`` in a worker thread; the next batch starts as soon as the previous fsync ends,
and every request waits for the fsync that covers its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import re
import secrets
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from hooklake.errors import ConfigError, StorageError
from hooklake.layout import fsync_dir, journal_dir
from hooklake.storage import is_remote

MAGIC = b"HLR1"
_FRAME = struct.Struct("<4sIII")
OPEN_SUFFIX = ".open"
SEALED_SUFFIX = ".seg"
LOCK_NAME = "lock"
#: The file a flusher locks while it commits a writer's segments (one flusher per writer).
FLUSH_LOCK_NAME = "flushing"


class Record(NamedTuple):
    """One journal record: receive metadata plus the raw body, and where it sits."""

    header: dict[str, Any]
    body: bytes
    offset: int


def encode_record(header: dict[str, Any], body: bytes) -> bytes:
    head = orjson.dumps(header)
    crc = zlib.crc32(body, zlib.crc32(head))
    return _FRAME.pack(MAGIC, len(head), len(body), crc) + head + body


def read_segment(path: Path) -> tuple[list[Record], int]:
    """All whole records of a segment and the length of that valid prefix. Reading stops at
    the first torn or corrupt record: everything after it was never acknowledged."""
    data = path.read_bytes()
    records: list[Record] = []
    pos, end = 0, len(data)
    while pos + _FRAME.size <= end:
        magic, hlen, blen, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        stop = start + hlen + blen
        if magic != MAGIC or stop > end:
            break
        head, body = data[start : start + hlen], data[start + hlen : stop]
        if zlib.crc32(body, zlib.crc32(head)) != crc:
            break
        try:
            header = orjson.loads(head)
        except orjson.JSONDecodeError:
            break
        records.append(Record(header, body, pos))
        pos = stop
    return records, pos


def new_writer_id() -> str:
    host = re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname()).strip("-")[:24] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def segment_number(path: Path) -> int:
    return int(path.name.split(".", 1)[0])


def try_lock(path: Path) -> int | None:
    """Take an exclusive lock on ``path`` without waiting; the fd holds it, ``None`` if busy."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def lock_waiting(path: Path) -> int | None:
    """Take an exclusive lock on ``path``, waiting for whoever holds it; ``None`` when the
    holder removed ``path`` (or its directory) meanwhile."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    if _is_linked(fd, path):
        return fd
    unlock(fd)
    return None


def _is_linked(fd: int, path: Path) -> bool:
    """Whether ``fd`` is the file that ``path`` names now (not one unlinked meanwhile)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@dataclass
class SegmentWriter:
    """The synchronous core of one writer: append bytes durably, seal segments.

    Not thread-safe; :class:`GroupCommitter` calls it from a single worker thread.
    """

    lake: Path | str
    segment_max_bytes: int = 64 << 20
    writer_id: str = field(default_factory=new_writer_id)
    fsync_observer: Callable[[float], None] | None = None
    #: How long :meth:`open` waits for a flusher that holds this writer's lock.
    open_timeout: float = 10.0
    _fd: int | None = None
    _lock_fd: int | None = None
    _seq: int = 0
    _size: int = 0
    _opened_at: float = 0.0
    #: Closed segments whose rename to ``.seg`` failed (read-only lake): retried until it works.
    _unsealed: list[Path] = field(default_factory=list)
    #: The journal directory; by default ``_journal`` inside a local lake (see journal_root).
    journal: Path | None = None

    @property
    def directory(self) -> Path:
        return journal_root(self.lake, self.journal) / self.writer_id

    def open(self) -> None:
        # A flusher may be looking at this new, empty directory as a dead writer's: it holds
        # the lock for a moment and may unlink it and remove the directory. Retry until we
        # hold a lock that is still the one linked in the directory.
        lock = self.directory / LOCK_NAME
        # A flusher holds a dead writer's lock only while it flushes; on a loaded machine that
        # can take a while, so wait by the clock, not by a count of tries.
        deadline = time.monotonic() + self.open_timeout
        while time.monotonic() < deadline:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = try_lock(lock)
            except FileNotFoundError:  # removed between mkdir and open: start again
                continue
            except OSError as exc:
                raise StorageError(f"cannot create the journal in {self.directory}: {exc}") from exc
            if fd is None:
                time.sleep(0.005)
                continue
            if _is_linked(fd, lock):
                self._lock_fd = fd
                return
            unlock(fd)
        raise StorageError(f"journal {self.directory} is in use by another process")

    def _open_segment(self) -> int:
        self._seq += 1
        path = self.directory / f"{self._seq:08d}{OPEN_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd, self._size, self._opened_at = fd, 0, time.monotonic()
        return fd

    def write(self, data: bytes) -> None:
        """Append ``data`` and make it durable. On failure nothing of it counts: the segment
        is cut back and sealed, and the next write starts a fresh one."""
        try:
            fd = self._fd if self._fd is not None else self._open_segment()
            start = time.perf_counter()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fdatasync(fd)
            if self.fsync_observer is not None:
                self.fsync_observer(time.perf_counter() - start)
        except OSError as exc:
            self._abandon()
            what = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
            raise StorageError(f"journal write failed ({what}); nothing was acknowledged") from exc
        self._size += len(data)
        if self._size >= self.segment_max_bytes:
            # The data is durable; a seal that fails now is retried later (see seal()).
            with contextlib.suppress(OSError):
                self.seal()

    def _abandon(self) -> None:
        # Cut off whatever part of the failed batch reached the file, then seal what was
        # acknowledged before it so no later record lands behind a torn one.
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        with contextlib.suppress(OSError):
            self.seal()
        if self._fd is not None:  # sealing failed too: drop the segment handle anyway
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def age(self) -> float:
        return time.monotonic() - self._opened_at if self._fd is not None else 0.0

    def due(self, seal_interval: float) -> bool:
        """Whether :meth:`seal` has work: an old open segment, or a seal that failed before."""
        return bool(self._unsealed) or self.age() >= seal_interval

    def seal(self) -> Path | None:
        """Close the open segment and hand it to the flusher. ``None`` if nothing was open.

        A segment whose rename fails is remembered and renamed by a later call: left as
        ``.open`` by a live writer, the flusher would not take it until this process ends.
        """
        sealed = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            src = self.directory / f"{self._seq:08d}{OPEN_SUFFIX}"
            if self._size:
                self._unsealed.append(src)  # before anything here can fail
                sealed = src.with_suffix(SEALED_SUFFIX)
            os.close(fd)
            if not self._size:
                src.unlink(missing_ok=True)
        self._seal_leftovers()
        return sealed

    def _seal_leftovers(self) -> None:
        while self._unsealed:
            src = self._unsealed[0]
            os.replace(src, src.with_suffix(SEALED_SUFFIX))
            self._unsealed.pop(0)
            fsync_dir(self.directory)

    def close(self) -> None:
        try:
            self.seal()
        finally:
            if self._lock_fd is not None:
                unlock(self._lock_fd)
                self._lock_fd = None


class GroupCommitter:
    """Async front of a :class:`SegmentWriter`: many concurrent appends, one fsync per batch.

    A dedicated thread owns the writer. There is no idle timer: it takes whatever records
    are waiting as soon as the previous fsync returns, so a lone request waits for exactly one
    fsync and a busy collector amortises one over many. Each batch costs the event loop one
    wake-up (``call_soon_threadsafe``), not one per request.
    """

    def __init__(
        self,
        writer: SegmentWriter,
        seal_interval: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.writer = writer
        self.on_batch = on_batch
        self.seal_interval = seal_interval
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.writer.open)
        self._thread = threading.Thread(target=self._run, name="hooklake-journal", daemon=True)
        self._thread.start()

    async def append(self, record: bytes) -> None:
        """Return once ``record`` is durably on disk; raise :class:`StorageError` if it is not."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._closing:
                raise StorageError("the collector is shutting down; retry")
            self._pending.append(record)
            self._waiters.append(fut)
            self._cond.notify()
        await fut

    def _run(self) -> None:
        assert self._loop is not None
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(self.seal_interval / 2)
                batch, waiters = self._pending, self._waiters
                self._pending, self._waiters = [], []
                closing = self._closing
            if batch:
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                error: StorageError | None = None
                try:
                    self.writer.write(b"".join(batch))
                except Exception as exc:  # StorageError, or anything unexpected: never ack
                    error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
                self._loop.call_soon_threadsafe(_resolve, waiters, error)
            if self.writer.due(self.seal_interval):
                with contextlib.suppress(OSError):
                    self.writer.seal()
            if closing and not batch:
                return

    async def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self.writer.close)


def _resolve(waiters: list[asyncio.Future[None]], error: StorageError | None) -> None:
    for w in waiters:
        if not w.done():
            if error is None:
                w.set_result(None)
            else:
                w.set_exception(error)


def journal_root(lake: Path | str, journal: Path | None = None) -> Path:
    """Where the writers of ``lake`` keep their journals: ``journal`` when given, else
    ``_journal`` inside a local lake. A lake on object storage needs ``journal``: journals are
    fsynced files on the collector's own disk."""
    if journal is not None:
        return Path(journal)
    if is_remote(lake):
        raise ConfigError(
            f"the lake {lake} is on object storage; its collector's journal must be on local "
            "disk: pass --journal DIR (or set HOOKLAKE_JOURNAL)"
        )
    return journal_dir(Path(lake))


def writer_dirs(lake: Path | str, journal: Path | None = None) -> list[Path]:
    root = journal_root(lake, journal)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir())


def sealed_segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEALED_SUFFIX}"), key=segment_number)


def open_segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{OPEN_SUFFIX}"), key=segment_number)


def recover_open_segment(path: Path) -> Path | None:
    """Seal a dead writer's open segment, cutting off a torn last record."""
    _, valid = read_segment(path)
    if valid == 0:
        path.unlink(missing_ok=True)
        return None
    if valid < path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(valid)
            fh.flush()
            os.fsync(fh.fileno())
    dst = path.with_suffix(SEALED_SUFFIX)
    os.replace(path, dst)
    fsync_dir(path.parent)
    return dst
