"""Typed settings shared by the collector and the CLI.

Values come from arguments first, then ``HOOKLAKE_*`` environment variables, then defaults.
Hook tokens can live in the hooks file or in ``HOOKLAKE_TOKEN_<HOOK>`` so that secrets need
not sit in a file next to the code.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hooklake.errors import ConfigError

DEFAULT_HOOK = "default"
_HOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_lake() -> str:
    """``$HOOKLAKE_LAKE`` or ``lake``: a directory or ``s3://bucket/prefix``."""
    return os.environ.get("HOOKLAKE_LAKE") or "lake"


def default_journal() -> Path | None:
    value = os.environ.get("HOOKLAKE_JOURNAL")
    return Path(value) if value else None


class Hook(BaseModel):
    """One MessageHook endpoint, ``POST /hooks/<name>``."""

    name: str
    token: str | None = Field(default=None, repr=False)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _HOOK_NAME.match(v):
            raise ValueError("hook names are letters, digits, '_', '.', '-' (at most 64)")
        return v

    @field_validator("token")
    @classmethod
    def _valid_token(cls, v: str | None) -> str | None:
        if v is not None and (not v or v != v.strip() or not v.isprintable()):
            raise ValueError("a token must be non-empty printable text without surrounding spaces")
        return v


class CollectorSettings(BaseSettings):
    """Everything the collector process needs. Tests build one pointing at ``tmp_path``."""

    model_config = SettingsConfigDict(env_prefix="HOOKLAKE_", extra="ignore")

    #: A local directory or ``s3://bucket/prefix``.
    lake: str = Field(default_factory=default_lake)
    #: The journal directory on local disk; by default ``_journal`` inside a local lake.
    journal: Path | None = Field(default_factory=default_journal)
    hooks: dict[str, Hook] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    #: A body must arrive within this many seconds, so slow senders cannot pin a request.
    body_timeout: float = Field(default=30.0, gt=0)
    #: A writer seals its open segment this often (seconds) so the flusher can take it.
    seal_interval: float = Field(default=2.0, gt=0)
    #: ...or as soon as it grows past this size.
    segment_max_bytes: int = Field(default=64 << 20, gt=0)
    #: How often the background flusher looks for sealed segments (seconds).
    flush_interval: float = Field(default=2.0, gt=0)
    #: The flusher brings an existing conversation index up to date at most this often
    #: (seconds): each update has a cost of its own, whatever it adds, and a reader computes
    #: what the index is behind on. Slow updates (a large lake) come further apart
    #: (collector.service.INDEX_SHARE).
    index_interval: float = Field(default=60.0, ge=0)


def _env_token_key(name: str) -> str:
    return "HOOKLAKE_TOKEN_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _env_token(name: str) -> str | None:
    return os.environ.get(_env_token_key(name)) or None


def load_hooks(path: Path | None) -> dict[str, Hook]:
    """Read a hooks file (``[hooks.NAME]`` tables with an optional ``token``).

    Without a file there is one open hook, ``default``. A token in the environment
    (``HOOKLAKE_TOKEN_<NAME>``) overrides the file.
    """
    if path is None:
        return {DEFAULT_HOOK: Hook(name=DEFAULT_HOOK, token=_env_token(DEFAULT_HOOK))}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"hooks file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"hooks file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"hooks"})
    if unknown:
        raise ConfigError(f"hooks file {path}: unknown key {unknown[0]!r} (expected [hooks.NAME])")
    table = doc.get("hooks")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"hooks file {path} defines no hooks; add a [hooks.NAME] table")
    hooks: dict[str, Hook] = {}
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"hooks file {path}: hooks.{name} must be a table")
        extra = sorted(set(spec) - {"token"})
        if extra:
            raise ConfigError(f"hooks file {path}: hooks.{name}.{extra[0]} is not a known key")
        env_token = _env_token(name)
        try:
            hooks[name] = Hook(name=name, token=env_token or spec.get("token"))
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["loc"][:1] != ("token",):
                where = f"hooks file {path}: hooks.{name}"  # the name is the table's key
            elif env_token is not None:
                where = f"{_env_token_key(name)} (the token of hook {name})"
            else:
                where = f"hooks file {path}: hooks.{name}.token"
            message = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            if where.endswith(".token") and type(value) in (int, float):  # token = 12345
                message += f' (quote it: token = "{value}")'
            raise ConfigError(f"{where}: {message}") from None
    return hooks
