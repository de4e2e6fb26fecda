"""What a built dataset says about itself: ``README.md`` (a Hugging Face dataset card) and
``manifest.json`` (machine-readable lineage).

The card tells an ML engineer what is inside (examples, turns, estimated tokens, role mix,
share of replies written by human agents, per split), how it was made (the recipe, the
redaction rules and what they replaced, what was dropped) and where it came from (the lake
files and their row counts). Its front matter lists the split files, so
``datasets.load_dataset("<out dir>")`` works as well.

The manifest holds the resolved recipe, the lake files and row counts, the SHA-256 of every
output file and, for every example, the keys of the messages it was made from
(``sources["train.jsonl"][i]`` belongs to line ``i`` of ``train.jsonl``). Neither file holds
the time of the build: the same lake and recipe give the same bytes.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.compute as pc

from hooklake import __version__
from hooklake.datasets.flat import ROLES, WEIGHT_1, FlatExamples
from hooklake.datasets.formats import SUFFIXES, writer_class
from hooklake.datasets.recipe import SPLITS, Recipe
from hooklake.datasets.redact import KINDS, REDACTOR_VERSION
from hooklake.datasets.render import Example
from hooklake.datasets.writers import OutputFile, sha256_file
from hooklake.layout import atomic_file, atomic_write_bytes
from hooklake.wording import counted, counted_phrase

CARD = "README.md"
MANIFEST = "manifest.json"


@dataclass
class SplitStats:
    """Counts over the examples of one split."""

    examples: int = 0
    roles: Counter[str] = field(default_factory=Counter)
    agent_replies: int = 0
    trained_replies: int = 0
    chars: int = 0

    @property
    def turns(self) -> int:
        return self.roles["user"] + self.roles["assistant"]

    @property
    def tokens(self) -> int:
        """A rough token estimate: characters / 4."""
        return (self.chars + 3) // 4

    def add(self, example: Example) -> None:
        self.examples += 1
        # A preference row's rejected reply is in the file (and in every DPO step) too; its
        # weight 0 keeps it out of the trained replies.
        for m in (*example.messages, *(example.rejected or ())):
            self.roles[m.role] += 1
            self.chars += len(m.content)
            if m.role == "assistant":
                self.agent_replies += m.human
                self.trained_replies += m.weight == 1

    def add_flat(self, flat: FlatExamples) -> None:
        """:meth:`add` for every example of ``flat`` at once."""
        self.examples += len(flat)
        per_role = np.bincount(flat.roles[flat.roles >= 0], minlength=len(ROLES))
        for role, n in zip(ROLES, per_role.tolist(), strict=True):
            if n:
                self.roles[role] += n
        self.chars += int(pc.sum(pc.utf8_length(flat.contents)).as_py() or 0)
        assistant = flat.roles == ROLES.index("assistant")
        self.agent_replies += int((assistant & flat.humans).sum())
        self.trained_replies += int((assistant & (flat.weights == WEIGHT_1)).sum())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitStats:
        """The stats :meth:`to_dict` wrote (an incremental build adds to them)."""
        return cls(
            examples=int(d["examples"]),
            roles=Counter({r: int(n) for r, n in d["messages"].items() if n}),
            agent_replies=int(d["agent_replies"]),
            trained_replies=int(d["trained_replies"]),
            chars=int(d["characters"]),
        )

    def merge(self, other: SplitStats) -> None:
        self.examples += other.examples
        self.roles.update(other.roles)
        self.agent_replies += other.agent_replies
        self.trained_replies += other.trained_replies
        self.chars += other.chars

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "turns": self.turns,
            "messages": {r: self.roles[r] for r in ("system", "user", "assistant")},
            "agent_replies": self.agent_replies,
            "trained_replies": self.trained_replies,
            "characters": self.chars,
            "tokens_estimate": self.tokens,
        }


@dataclass
class DatasetStats:
    """Everything a build counts, for the card, the manifest and the build report."""

    splits: dict[str, SplitStats] = field(default_factory=lambda: {s: SplitStats() for s in SPLITS})
    messages_read: int = 0
    conversations_read: int = 0
    conversations_used: int = 0
    groups: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    dropped: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    #: Preference and feedback builds: rows per rule that made them, what was found and
    #: passed over, and the first row of each rule (shown in the card).
    signals: Counter[str] = field(default_factory=Counter)
    signal_notes: Counter[str] = field(default_factory=Counter)
    signal_examples: dict[str, Example] = field(default_factory=dict)

    def add_signal(self, example: Example) -> None:
        if example.signal is not None:
            self.signals[example.signal] += 1
            self.signal_examples.setdefault(example.signal, example)

    @property
    def examples(self) -> int:
        return sum(s.examples for s in self.splits.values())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetStats:
        """The stats :meth:`to_dict` wrote, for an incremental build to add to (the signal
        formats' example rows are not kept: those formats build whole only)."""
        return cls(
            splits={name: SplitStats.from_dict(d["splits"][name]) for name in SPLITS},
            messages_read=int(d["messages_read"]),
            conversations_read=int(d["conversations_read"]),
            conversations_used=int(d["conversations_used"]),
            groups={name: int(d["groups"][name]) for name in SPLITS},
            dropped=Counter(d["dropped"]),
            redactions=Counter(d["redactions"]),
        )

    def merge(self, other: DatasetStats) -> None:
        """Add the counts of ``other`` (groups are counted by the caller: a group can be in
        both)."""
        for name, s in other.splits.items():
            self.splits[name].merge(s)
        self.messages_read += other.messages_read
        self.conversations_read += other.conversations_read
        self.conversations_used += other.conversations_used
        self.dropped.update(other.dropped)
        self.redactions.update(other.redactions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages_read": self.messages_read,
            "conversations_read": self.conversations_read,
            "conversations_used": self.conversations_used,
            "groups": self.groups,
            "examples": self.examples,
            "splits": {name: s.to_dict() for name, s in self.splits.items()},
            "dropped": dict(sorted(self.dropped.items())),
            "redactions": {k: self.redactions[k] for k in KINDS if self.redactions[k]},
            **(
                {
                    "signals": dict(sorted(self.signals.items())),
                    "signal_notes": dict(sorted(self.signal_notes.items())),
                }
                if self.signals or self.signal_notes
                else {}
            ),
        }


@dataclass(frozen=True)
class LakeFile:
    """A lake file the build read: its path inside the lake and its stored rows."""

    path: str
    rows: int


@dataclass(frozen=True)
class BuildInfo:
    """What the card and the manifest describe."""

    recipe: Recipe
    stats: DatasetStats
    files: Mapping[str, OutputFile]
    lake_files: Sequence[LakeFile]
    #: The version of the lake's messages table the build read, and when it was committed.
    lake_version: LakeVersion | None = None
    #: Incremental builds: every shard file per split (``files`` holds this build's) and the
    #: manifest's ``incremental`` section.
    shards: Mapping[str, Sequence[OutputFile]] | None = None
    increments: Mapping[str, Any] | None = None
    #: Closed-only builds: the cut-off (UTC, as the manifest writes it) the conversations
    #: left out as still open had a message at or after.
    closed_before: str | None = None

    def data_files(self) -> dict[str, str]:
        """The file, or shard pattern, of every split that holds examples."""
        if self.shards is None:
            return {s: f.path.name for s, f in self.files.items() if f.rows}
        out = {}
        for split, files in self.shards.items():
            if sum(f.rows for f in files):
                name = files[0].path.name
                out[split] = f"{split}-*{name[name.index('.') :]}"
        return out


@dataclass(frozen=True)
class LakeVersion:
    """The table version a build read (``hooklake build --as-of VERSION`` reads it again)."""

    table: str
    version: int
    committed_at: str


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return label
    return "10M<n<100M"


def _q(value: str) -> str:
    """A YAML scalar: JSON strings are valid double-quoted YAML."""
    return orjson.dumps(value).decode()


def _front_matter(info: BuildInfo) -> str:
    lines = [
        "---",
        f"pretty_name: {_q(info.recipe.name)}",
        "tags:",
        "- hooklake",
        "- landbot",
        "- conversational",
        "task_categories:",
        "- text-generation",
        "size_categories:",
        f"- {_size_category(info.stats.examples)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split, name in info.data_files().items():
        lines += [f"  - split: {split}", f"    path: {_q(name)}"]
    lines.append("---")
    return "\n".join(lines)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _actual_split(stats: DatasetStats, group_by: str) -> str:
    total = sum(stats.groups.values())
    if not total:
        return ""
    shares = "/".join(f"{stats.groups[s] / total:.3f}" for s in SPLITS)
    return f" (actual: {shares} of the {counted(total, group_by)} read)"


def _recipe_lines(recipe: Recipe, stats: DatasetStats) -> list[str]:
    src, ex, sp = recipe.source, recipe.examples, recipe.split
    history = counted(ex.max_context_turns, "turn") if ex.max_context_turns else "all turns"
    channels = ", ".join(map(str, src.channels)) or "all"
    hooks = ", ".join(src.hooks) or "all"
    if src.since or src.until:
        period = f"starting {src.since or 'any day'} to {src.until or 'any day'} (UTC dates)"
    else:
        period = "of any date"
    return [
        f"- **Source**: channels {channels}; hooks {hooks}; conversations {period}.",
        f"- **Conversations**: a customer's messages split after "
        f"{recipe.conversations.gap_minutes} minutes of inactivity.",
        "- **Turns**: consecutive messages of one role merged; assistant turns before the "
        "customer's first message and customer turns after the last reply left out, so every "
        "example opens with the user and ends with the assistant.",
        (
            f"- **Examples**: one per customer signal (below); human agent replies in prompts: "
            f"{ex.agent_turns}; "
            if writer_class(recipe.format).from_signals
            else f"- **Examples**: one per {ex.unit}; human agent replies: {ex.agent_turns}; "
            f"trained replies: {ex.targets}; "
        )
        + f"history: {history}; images and iframes: {ex.media}; "
        f"system prompt: {'yes' if ex.system_prompt else 'none'}.",
        f"- **Filter**: at least {counted(recipe.filter.min_user_turns, 'user turn')}; duplicate "
        f"examples {'dropped' if recipe.filter.dedupe else 'kept'}.",
        f"- **Split**: by {sp.group_by} (no {sp.group_by} is in two splits), fractions of "
        f"groups {sp.train:g}/{sp.validation:g}/{sp.test:g}"
        f"{_actual_split(stats, sp.group_by)}, seed {sp.seed}. A {sp.group_by}'s split is "
        "decided by a keyed hash of its id and the seed alone, so it never changes as the lake "
        "grows; the fractions hold on average, not exactly.",
    ]


def _increment_lines(increments: Mapping[str, Any] | None) -> list[str]:
    if not increments:
        return []
    runs = increments["increments"]
    return [
        f"- **Incremental**: built in {counted(len(runs), 'run')} of "
        "`hooklake build --incremental`, one shard each; the latest took the conversations "
        f"closed before {increments['cutoff']} "
        "(UTC: the newest message then, minus the gap). Conversations still open then are "
        "left for a later run; `manifest.json` lists every run."
    ]


def _closed_lines(closed_before: str | None) -> list[str]:
    if closed_before is None:
        return []
    return [
        "- **Closed conversations only** (`--closed-only`): conversations with a message at "
        f"or after {closed_before} (UTC: the newest message in the lake, minus the gap) were "
        "still open and are left out; a later build takes them."
    ]


def render_card(info: BuildInfo) -> str:
    """The text of ``README.md``."""
    r, st = info.recipe, info.stats
    total = SplitStats()
    for s in st.splits.values():
        total.examples += s.examples
        total.roles.update(s.roles)
        total.agent_replies += s.agent_replies
        total.trained_replies += s.trained_replies
        total.chars += s.chars
    rows = []
    for name, s in [*st.splits.items(), ("total", total)]:
        f = info.files.get(name)
        file_cell = f"`{f.path.name}`" if f else ""
        sha_cell = f"`{f.sha256[:12]}`" if f else ""
        if info.shards is not None and name in info.shards:
            n = len(info.shards[name])
            file_cell = f"`{info.data_files().get(name, '-')}` ({n} shard{'s' * (n != 1)})"
            sha_cell = "in `manifest.json`"
        rows.append(
            [
                name,
                s.examples,
                s.turns,
                s.roles["user"],
                s.roles["assistant"],
                _pct(s.agent_replies, s.roles["assistant"]),
                s.trained_replies,
                s.tokens,
                file_cell,
                sha_cell,
            ]
        )
    out = [
        _front_matter(info),
        "",
        f"# {r.name}",
        "",
        f"Dialogue training data built by Hooklake {__version__} from Landbot MessageHooks "
        f"conversations, with recipe `{r.origin or r.name}`.",
        "",
        f"Format **{r.format}**: {writer_class(r.format).description}.",
        "",
        "## Contents",
        "",
        *_table(
            [
                "split",
                "examples",
                "turns",
                "user",
                "assistant",
                "agent share",
                "trained replies",
                "≈ tokens",
                "file",
                "sha256",
            ],
            rows,
        ),
        "",
        "Turns are user and assistant messages; *agent share* is the share of assistant "
        "messages written (at least partly) by a human agent; tokens are estimated as "
        "characters / 4. "
        f"Role mix (all splits): {total.roles['user']} user, {total.roles['assistant']} "
        f"assistant, {total.roles['system']} system messages.",
        "",
        "## How it was made",
        "",
        f"Read {counted(st.messages_read, 'message')} in "
        f"{counted(st.conversations_read, 'conversation')} "
        # Groups are counted over every conversation read, those without examples too.
        f"({st.conversations_used} gave examples); the {r.split.group_by}s of all of them "
        "per split: " + ", ".join(f"{k} {v}" for k, v in st.groups.items()) + ".",
        "",
        *_recipe_lines(r, st),
        *_increment_lines(info.increments),
        *_closed_lines(info.closed_before),
        "",
        "Dropped: "
        + (
            ", ".join(counted_phrase(v, k.replace("_", " ")) for k, v in sorted(st.dropped.items()))
            or "nothing"
        )
        + ".",
        "",
        *writer_class(r.format).card_section(r, st),
        "## Redaction",
        "",
    ]
    if r.redact.pii:
        out += [
            f"Personal data was replaced by typed placeholders (Hooklake redaction rules "
            f"version {REDACTOR_VERSION}): e-mails, phone numbers, Luhn-valid card numbers, "
            "mod-97-valid IBANs, secret-looking URL query values, and the customer's name and "
            "custom field values known from the payload.",
            "",
            *_table(["placeholder", "replaced"], [[f"`<{k}>`", st.redactions[k]] for k in KINDS]),
        ]
    else:
        out.append("**None.** The recipe turned redaction off: texts are as customers typed them.")
    ids = writer_class(r.format).id_columns
    if ids:
        # The ids link every row back to a person in Landbot and in the lake: personal data
        # (an erasure deletes them too) that a user sharing the files must know is there.
        out += [
            "",
            f"The {', '.join(f'`{c}`' for c in ids)} columns keep Landbot's ids as they are: "
            "they identify the customer in Landbot and in the lake, so drop them before the "
            "dataset leaves the people allowed to see the lake.",
        ]
    rows_total = sum(f.rows for f in info.lake_files)
    partitions: dict[str, list[LakeFile]] = {}
    for lf in info.lake_files:
        partitions.setdefault(str(Path(lf.path).parent), []).append(lf)
    out += [
        "",
        "## Recipe",
        "",
        "```toml" if r.text is not None else "```json",
        (r.text if r.text is not None else r.to_json().decode()).rstrip("\n"),
        "```",
        "",
        "## Lake snapshot",
        "",
        *_version_lines(info),
        f"{len(info.lake_files)} message files, {rows_total} stored rows (duplicate deliveries "
        "included; `manifest.json` lists every file):",
        "",
        *_table(
            ["partition", "files", "rows"],
            [[p, len(fs), sum(f.rows for f in fs)] for p, fs in sorted(partitions.items())],
        ),
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f"ds = load_dataset({_q(writer_class(r.format).loader)}, data_files={{",
        *[f"    {_q(s)}: {_q(name)}," for s, name in info.data_files().items()],
        "})",
        "```",
        "",
        "`manifest.json` maps every example to the keys of the messages it was made from.",
        "",
    ]
    return "\n".join(out)


def _version_lines(info: BuildInfo) -> list[str]:
    v = info.lake_version
    if v is None:
        return []
    if info.increments:
        # Each shard holds what its run's version had closed: one build of the last version
        # cannot give them back, the same runs in turn can.
        versions = ", ".join(str(run["lake_version"]) for run in info.increments["increments"])
        rebuild = (
            "Rebuild exactly these files, shards included, into an empty folder with "
            "`hooklake build RECIPE --incremental --as-of VERSION` for each run's version in "
            f"turn ({versions})"
        )
    else:
        closed = " --closed-only" if info.closed_before is not None else ""
        rebuild = (
            f"Rebuild exactly these files with `hooklake build RECIPE{closed} --as-of {v.version}`"
        )
    kept = "those versions" if info.increments else "that version"
    return [
        f"Read version {v.version} of the `{v.table}` table (committed {v.committed_at}). "
        f"{rebuild} (as long as compaction's retention keeps {kept}).",
        "",
    ]


def _versions(v: LakeVersion | None) -> dict[str, Any]:
    if v is None:
        return {}
    return {"versions": {v.table: {"version": v.version, "committed_at": v.committed_at}}}


def write_card(out_dir: Path, info: BuildInfo) -> OutputFile:
    """Write ``README.md`` atomically."""
    path = Path(out_dir) / CARD
    data = render_card(info).encode("utf-8")
    atomic_write_bytes(data, path)
    return OutputFile(path, 0, len(data), sha256_file(path))


def write_manifest(
    out_dir: Path,
    info: BuildInfo,
    card: OutputFile,
    sources: Mapping[str, Path],
) -> Path:
    """Write ``manifest.json``. ``sources`` maps each data file name to a file holding one
    JSON list of message keys per example, in example order; they are spliced in as they
    are, so the manifest is written without holding them in memory."""
    path = Path(out_dir) / MANIFEST
    files = (
        [f for fs in info.shards.values() for f in fs]
        if info.shards is not None
        else list(info.files.values())
    )
    outputs = {
        f.path.name: {"rows": f.rows, "bytes": f.size, "sha256": f.sha256}
        for f in sorted(files, key=lambda f: f.path.name)
    }
    outputs[card.path.name] = {"bytes": card.size, "sha256": card.sha256}
    head = {
        "hooklake": __version__,
        "name": info.recipe.name,
        "format": info.recipe.format,
        "recipe": info.recipe.to_dict(),
        "recipe_file": info.recipe.origin,
        "redaction_rules": REDACTOR_VERSION if info.recipe.redact.pii else None,
        "lake": {
            **_versions(info.lake_version),
            "files": [{"path": f.path, "rows": f.rows} for f in info.lake_files],
            "rows": sum(f.rows for f in info.lake_files),
        },
        "outputs": outputs,
        "stats": info.stats.to_dict(),
        **({"incremental": dict(info.increments)} if info.increments is not None else {}),
        **({"closed_before": info.closed_before} if info.closed_before is not None else {}),
    }
    with atomic_file(path) as fh:
        fh.write(orjson.dumps(head, option=orjson.OPT_INDENT_2)[:-2])
        fh.write(b',\n  "sources": {')
        for i, (name, src) in enumerate(sources.items()):
            fh.write(b"," if i else b"")
            fh.write(b"\n    " + orjson.dumps(name) + b": [")
            with open(src, "rb") as lines:
                first = True
                for line in lines:
                    fh.write((b"\n      " if first else b",\n      ") + line.rstrip(b"\n"))
                    first = False
            fh.write(b"\n    ]" if not first else b"]")
        fh.write(b"\n  }\n}\n")
    return path


def remove_stale(out_dir: Path, keep: Sequence[Path], state_dir: str | None = None) -> list[Path]:
    """Delete split files (and shards) an earlier build of another format or kind left in
    ``out_dir`` (only files named like Hooklake's own outputs), and the folder ``state_dir``
    of earlier incremental builds, so a folder never mixes two builds."""
    keep_names = {p.name for p in keep}
    removed = []
    for split in SPLITS:
        for suffix in SUFFIXES:
            candidates = [Path(out_dir) / f"{split}.{suffix}"]
            candidates += sorted(Path(out_dir).glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].{suffix}"))
            for p in candidates:
                if p.name not in keep_names and p.exists():
                    p.unlink()
                    removed.append(p)
    if state_dir is not None and (Path(out_dir) / state_dir).is_dir():
        shutil.rmtree(Path(out_dir) / state_dir)
        removed.append(Path(out_dir) / state_dir)
    return removed
