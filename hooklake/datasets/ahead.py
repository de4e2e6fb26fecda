"""Run an iterator one step ahead of its consumer, on a thread of its own.

A build has two cores' worth of work that can overlap: DuckDB sorting and handing over the
next batch (native code that lets go of Python's lock) while this process shapes the current
one. :func:`ahead` lets the producer run ``depth`` items ahead and no further, so memory holds
at most ``depth`` finished items beside the one being consumed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: Seconds between the producer's checks that the consumer still wants items.
_POLL = 0.1


class _Failed:
    """The producer's exception, handed over in place of an item."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    """The producer ran out."""


class _Producer(Generic[T]):
    def __init__(self, items: Iterator[T], depth: int) -> None:
        self.items = items
        self.queue: queue.Queue[T | _Failed | _Done] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hooklake-ahead", daemon=True)

    def _put(self, item: T | _Failed | _Done) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failed(exc))
            return
        finally:
            close = getattr(self.items, "close", None)
            if close is not None and self.stop.is_set():
                close()
        self._put(_Done())


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items`` in order, produced on another thread up to ``depth`` ahead.

    The producer's exceptions are raised here, at the item where it failed. Leaving the loop
    early (or closing this generator) stops the producer before its next item."""
    producer = _Producer(items, depth)
    producer.thread.start()
    try:
        while True:
            item = producer.queue.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        producer.stop.set()
        producer.thread.join()
