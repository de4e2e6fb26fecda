"""What an incremental build keeps between runs, in the dataset folder.

An incremental build (``hooklake build RECIPE --incremental``) adds the conversations that
closed since the previous one as new shards (``train-00001.jsonl``, ...). To know what it holds
already it keeps, beside the shards, a state folder :data:`STATE_DIR`:

- ``conversations-NNNNN.arrow``: the conversations shard NNNNN was built from (every
  conversation the recipe selected, whether it gave examples or not), with their split group
  and split (the card counts groups over all shards);
- ``fingerprints-NNNNN.arrow``: the 64-bit digests (:mod:`.dedupe`) of the examples it kept,
  so a later shard never repeats an example of an earlier one;
- ``<shard file>.sources``: the source message keys of each example of each shard file, one
  JSON list per line, spliced into ``manifest.json`` by every later build.

``manifest.json`` says which shards exist, the cut-off of each increment and the hash of the
resolved recipe: an incremental build refuses to add to a folder made with another recipe.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from hooklake.datasets.card import MANIFEST, BuildInfo, DatasetStats, LakeFile, LakeVersion
from hooklake.datasets.dedupe import Deduper
from hooklake.datasets.distinct import StringSet, add_groups
from hooklake.datasets.recipe import SPLITS, Recipe
from hooklake.datasets.writers import OutputFile
from hooklake.errors import BuildError
from hooklake.wording import utc_text

if TYPE_CHECKING:
    from hooklake.datasets.output import BuildOutput

STATE_DIR = ".hooklake-build"


def stamp(t: datetime) -> str:
    """A UTC time as the manifest writes it: ISO 8601 to the millisecond, with ``Z``."""
    return utc_text(t, "milliseconds")


def recipe_hash(recipe: Recipe) -> str:
    """The SHA-256 of the resolved recipe (every default filled in; comments do not count)."""
    return hashlib.sha256(recipe.to_json()).hexdigest()


@dataclass
class Increments:
    """What the incremental builds before this one left in the folder."""

    #: Shard number the next build writes.
    next_shard: int = 0
    #: Every increment so far: shard, cut-off, conversations, examples, lake version.
    history: list[dict[str, Any]] = field(default_factory=list)
    #: Every shard file so far: name -> {"rows", "bytes", "sha256"}.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversations: set[str] = field(default_factory=set)
    #: The split groups seen so far, per split name.
    groups: dict[str, StringSet] = field(default_factory=lambda: {s: StringSet() for s in SPLITS})
    #: The digests of the examples every shard so far kept (:mod:`.dedupe`).
    fingerprints: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    stats: DatasetStats = field(default_factory=DatasetStats)


def _fail(out: Path, why: str) -> BuildError:
    return BuildError(
        f"cannot add to the incremental build in {out}: {why}; build into an empty folder, or "
        "without --incremental to rebuild it whole"
    )


def load_increments(out: Path, recipe: Recipe) -> Increments:
    """The state of earlier incremental builds in ``out`` (empty when ``out`` holds none).
    Raises :class:`BuildError` when the folder holds another kind of build, a build of another
    recipe, or a manifest or state that cannot be read."""
    path = out / MANIFEST
    if not path.exists():
        if (out / STATE_DIR).exists():
            raise _fail(out, f"{STATE_DIR}/ is there but {MANIFEST} is missing")
        return Increments()
    try:
        manifest = orjson.loads(path.read_bytes())
        inc = manifest.get("incremental")
    except (OSError, orjson.JSONDecodeError, AttributeError) as exc:
        raise _fail(out, f"{MANIFEST} is not valid JSON ({exc})") from None
    if inc is None:
        raise _fail(out, "it holds a full build (its manifest has no increments)")
    try:
        if inc["recipe_sha256"] != recipe_hash(recipe):
            raise _fail(out, "the recipe changed since the previous build (recipe hash differs)")
        history = list(inc["increments"])
        state = Increments(
            next_shard=int(history[-1]["shard"]) + 1 if history else 0,
            history=history,
            outputs={k: v for k, v in manifest["outputs"].items() if k != "README.md"},
            stats=DatasetStats.from_dict(manifest["stats"]),
        )
        kept: list[np.ndarray] = []
        for h in history:
            shard = int(h["shard"])
            convs = feather.read_table(_state(out, "conversations", shard))
            state.conversations.update(convs.column("conversation_id").to_pylist())
            for code, split in enumerate(SPLITS):
                found = pc.equal(convs.column("split"), code)
                state.groups[split].update(convs.column("group").filter(found).combine_chunks())
            digests = feather.read_table(_state(out, "fingerprints", shard)).column(0)
            kept.append(digests.to_numpy())
        if kept:
            state.fingerprints = np.concatenate(kept)
    except BuildError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OSError, pa.ArrowException) as exc:
        why = f"{MANIFEST} or {STATE_DIR}/ is damaged ({type(exc).__name__}: {exc})"
        raise _fail(out, why) from None
    return state


def _state(out: Path, kind: str, shard: int) -> Path:
    return out / STATE_DIR / f"{kind}-{shard:05d}.arrow"


def sources_path(out: Path, file_name: str) -> Path:
    """Where the source keys of the examples of one shard file are kept."""
    return out / STATE_DIR / f"{file_name}.sources"


def save_shard_state(
    out: Path,
    shard: int,
    conversations: list[str],
    groups: list[str],
    splits: list[int],
    digests: np.ndarray,
) -> None:
    """Write what shard ``shard`` adds to the state (before the manifest that names it)."""
    (out / STATE_DIR).mkdir(exist_ok=True)
    feather.write_feather(
        pa.table(
            {
                "conversation_id": pa.array(conversations, pa.string()),
                "group": pa.array(groups, pa.string()),
                "split": pa.array(splits, pa.int8()),
            }
        ),
        _state(out, "conversations", shard),
        compression="uncompressed",
    )
    feather.write_feather(
        pa.table({"fingerprint": pa.array(digests, pa.uint64())}),
        _state(out, "fingerprints", shard),
        compression="uncompressed",
    )


def describe_increment(
    out: Path,
    recipe: Recipe,
    previous: Increments,
    stats: DatasetStats,
    output: BuildOutput,
    files: dict[str, OutputFile],
    sources: dict[str, Path],
    deduper: Deduper | None,
    cutoff: datetime | None,
    lake_files: list[LakeFile],
    lake_version: LakeVersion | None,
) -> tuple[DatasetStats, BuildInfo, dict[str, Path]]:
    """Keep this increment's state and describe all shards: the stats of every increment
    added up, every shard file, every shard's sources."""
    shard = previous.next_shard
    # Empty shard files would only clutter the folder (and trip some JSON readers).
    for split, f in list(files.items()):
        if f.rows == 0:
            f.path.unlink()
            del files[split]
            sources.pop(f.path.name)
    (out / STATE_DIR).mkdir(exist_ok=True)
    for name, src in sources.items():
        os.replace(src, sources_path(out, name))
    conversations = output.conversations
    save_shard_state(
        out,
        shard,
        [c for c, _, _ in conversations],
        [g for _, g, _ in conversations],
        [code for _, _, code in conversations],
        deduper.added if deduper is not None else np.zeros(0, dtype=np.uint64),
    )
    total = previous.stats
    total.merge(stats)
    groups = previous.groups
    add_groups(groups, [g for _, g, _ in conversations], [code for _, _, code in conversations])
    total.groups = {s: len(g) for s, g in groups.items()}
    shards: dict[str, list[OutputFile]] = {s: [] for s in SPLITS}
    for name, o in previous.outputs.items():
        split = name.split("-", 1)[0]
        shards[split].append(OutputFile(out / name, int(o["rows"]), int(o["bytes"]), o["sha256"]))
    for split, f in files.items():
        shards[split].append(f)
    history = [
        *previous.history,
        {
            "shard": shard,
            "cutoff": stamp(cutoff) if cutoff is not None else None,
            "conversations": len(conversations),
            "examples": stats.examples,
            "lake_version": lake_version.version if lake_version else None,
        },
    ]
    increments = {
        "recipe_sha256": recipe_hash(recipe),
        "cutoff": history[-1]["cutoff"],
        "state": STATE_DIR,
        "increments": history,
    }
    info = BuildInfo(
        recipe, total, files, lake_files, lake_version, shards=shards, increments=increments
    )
    all_sources = {
        f.path.name: sources_path(out, f.path.name)
        for split in SPLITS
        for f in sorted(shards[split], key=lambda f: f.path.name)
    }
    return total, info, all_sources
