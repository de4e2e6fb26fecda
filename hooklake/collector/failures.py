"""Logging work that keeps failing: once per error, then a line a minute, then the recovery.

A collector retries what fails (a flush every 2 s, an index update at the next round, a
journal write at Landbot's next retry); logging every try would bury the cause under
thousands of identical lines, with a traceback each.
"""

from __future__ import annotations

import logging
import re
import time

from hooklake import tables
from hooklake.errors import HooklakeError

log = logging.getLogger("hooklake.collector")

#: What differs between two reports of the same failure: numbers, and the words that hold
#: digits (an object store's request id, a duration in ms or µs).
_VARYING = re.compile(r"[^\s<>0-9]*[0-9][^\s<>]*")


class RepeatedFailure:
    """How a collector reports work that keeps failing (flushes: storage gone, credentials
    expired; index updates; journal writes: a full disk): a new error in full, the same one
    again as one line a minute, and the recovery. ``what`` names the work, ``retry`` says
    what happens meanwhile."""

    REPEAT_EVERY = 60.0

    def __init__(self, what: str, retry: str) -> None:
        self.what, self.retry = what, retry
        self.error: str | None = None
        self.since = 0.0
        self.next_report = 0.0

    def failed(self, exc: Exception) -> None:
        error, now = tables.one_line(exc), time.monotonic()
        # The same error again, though object storage's name each request and its duration.
        if _VARYING.sub("#", error) != _VARYING.sub("#", self.error or ""):
            if isinstance(exc, HooklakeError):  # ours say what failed: no traceback needed
                log.error("%s failed, %s: %s", self.what, self.retry, error)
            else:
                log.error("%s failed, %s", self.what, self.retry, exc_info=exc)
            if self.error is None:
                self.since = now
            self.error, self.next_report = error, now + self.REPEAT_EVERY
        elif now >= self.next_report:
            log.error("%s still failing after %.0f s: %s", self.what, now - self.since, error)
            self.next_report = now + self.REPEAT_EVERY

    def worked(self) -> None:
        if self.error is not None:
            log.info("%s works again after %.0f s", self.what, time.monotonic() - self.since)
            self.error = None
