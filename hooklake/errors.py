"""The one error hierarchy of Hooklake.

Every error a user can cause or fix is a :class:`HooklakeError`; its message says what went
wrong and what to do. The CLI prints it as one line, the HTTP shell maps it to a status.

::

    HooklakeError
    ├── ConfigError        bad settings, hooks file or recipe (names the bad key)
    ├── PayloadError       a body or message that cannot be stored as a message row (4xx)
    ├── StorageError       the journal or lake could not be written (HTTP 503)
    ├── LakeError          the lake cannot be read: missing, empty, bad query
    └── BuildError         a dataset build cannot produce valid output
"""

from __future__ import annotations


class HooklakeError(Exception):
    """Base of every error Hooklake raises on purpose."""


class ConfigError(HooklakeError):
    """Settings, a hooks file or a recipe is invalid."""


class PayloadError(HooklakeError):
    """A request body or one of its messages cannot be normalised into a message row."""


class StorageError(HooklakeError):
    """The journal or the lake could not be written; nothing was acknowledged."""


class LakeError(HooklakeError):
    """The lake cannot be read or queried."""


class BuildError(HooklakeError):
    """A dataset build would produce invalid output, so it stopped."""


class SparkError(HooklakeError):
    """A Spark job cannot run: pyspark or a suitable Java is missing, the session does not
    start, or the cluster cannot read the lake."""
