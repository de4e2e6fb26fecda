"""Where a lake lives: a local directory or an S3-compatible bucket prefix.

::

    lake_location("lake/")                    # a directory on this machine
    lake_location("s3://bucket/hooklake")     # object storage; credentials from AWS_* variables

Object storage is reached through delta-rs, which reads the standard AWS environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
``AWS_ALLOW_HTTP``, ``AWS_VIRTUAL_HOSTED_STYLE_REQUEST``) itself. Hooklake adds only what
concurrent writers need: commits use conditional PUTs (``If-None-Match``), so two collectors
committing the same table version never overwrite each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hooklake.errors import ConfigError

_SCHEMES = ("s3://", "s3a://")


@dataclass(frozen=True)
class LakeLocation:
    """A lake's root: ``uri`` is an absolute local path or ``s3://bucket/prefix``."""

    uri: str
    #: The directory, for a lake on this machine's disk; None on object storage.
    local: Path | None
    storage_options: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        return self.uri

    @property
    def is_local(self) -> bool:
        return self.local is not None

    def table_uri(self, table: str) -> str:
        return f"{self.uri.rstrip('/')}/{table}"


def lake_location(value: str | os.PathLike[str] | LakeLocation) -> LakeLocation:
    """The location a ``--lake`` value, ``HOOKLAKE_LAKE`` or ``Lake(...)`` argument names."""
    if isinstance(value, LakeLocation):
        return value
    text = os.fspath(value)
    if text.startswith(_SCHEMES):
        _, _, rest = text.partition("://")
        bucket = rest.split("/", 1)[0]
        if not bucket:
            raise ConfigError(f"{text} names no bucket: write s3://BUCKET/PREFIX")
        return LakeLocation(f"s3://{rest.rstrip('/')}", None, _s3_options())
    if "://" in text:
        raise ConfigError(
            f"{text}: Hooklake lakes live in a local directory or at s3://BUCKET/PREFIX"
        )
    path = Path(text).absolute()
    return LakeLocation(str(path), path)


def _s3_options() -> dict[str, str]:
    # delta-rs takes credentials, region and endpoint from the AWS_* environment itself; an
    # explicit option would only shadow what the user set. Conditional PUT is what makes
    # commits from several collectors safe without a lock service.
    return {"conditional_put": "etag"}


def is_remote(value: str | os.PathLike[str]) -> bool:
    return os.fspath(value).startswith(_SCHEMES)
