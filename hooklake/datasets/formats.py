"""Every output format by its recipe name: adding a format is adding its writer class here.

The class carries everything about its format (see :mod:`.writers`): the card, the recipe
checks, the stale-file clean-up and the explorer all ask it rather than keeping lists of their
own.
"""

from __future__ import annotations

from pathlib import Path

from hooklake.datasets.parquet import HFWriter
from hooklake.datasets.trl import (
    FeedbackWriter,
    PairsWriter,
    PreferenceWriter,
    PromptCompletionWriter,
)
from hooklake.datasets.writers import OpenAIWriter, ShareGPTWriter, Writer
from hooklake.errors import BuildError

WRITERS: dict[str, type[Writer]] = {
    w.format: w
    for w in (
        OpenAIWriter,
        HFWriter,
        ShareGPTWriter,
        PairsWriter,
        PromptCompletionWriter,
        PreferenceWriter,
        FeedbackWriter,
    )
}

#: Every suffix a format writes, for cleaning up after a build in another format.
SUFFIXES = tuple(sorted({w.suffix for w in WRITERS.values()}))


def writer_class(fmt: str) -> type[Writer]:
    """The writer class of format ``fmt``."""
    try:
        return WRITERS[fmt]
    except KeyError:
        raise BuildError(f"unknown format {fmt!r}; expected one of {', '.join(WRITERS)}") from None


def writer_for(
    fmt: str, out_dir: Path, *, weighted: bool = False, shard: int | None = None
) -> Writer:
    """The writer of format ``fmt`` writing into ``out_dir`` (shard ``shard`` of an
    incremental build when given)."""
    return writer_class(fmt)(out_dir, weighted=weighted, shard=shard)
