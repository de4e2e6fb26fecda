"""Scrub personal data from dialogue text before it becomes training data.

What is replaced, and by what (``REDACTOR_VERSION`` changes whenever these rules do, and the
dataset card records it so a team knows which rules a dataset was built with):

=============  =====================================================================
``<EMAIL>``    e-mail addresses
``<PHONE>``    phone numbers: international (``+34 696 33 64 50``, ``0034…``), local with
               separators (``(555) 123-4567``, ``06 12 34 56 78``) and bare runs of 9-15
               digits (``34696336450``, WhatsApp's form). Dates and amounts are left alone.
``<CARD>``     payment card numbers: 13-19 digits passing the Luhn check
``<IBAN>``     IBANs passing the ISO 13616 mod-97 check
``<TOKEN>``    URL query values that look secret (``?token=``, ``sig=``, long random values)
``<NAME>``     the customer's name as the payload knows it (whole and by part)
``<ADDRESS>``  custom fields named like an address; other custom fields become ``<FIELD>``
=============  =====================================================================

Known values come from the payload's ``customer`` object: its name, e-mail, phone and custom
fields (Landbot sends those as extra keys), gathered over the whole conversation because a bot
usually stores an e-mail in a field *after* the customer typed it.

Speed: one precompiled alternation finds every pattern in a single pass; it holds only the
branches a text can match (no number branches without an ASCII digit), text with no digit,
``@`` or URL is not scanned at all, and checks (Luhn, mod-97) only run on candidates. A build
redacts a whole batch at once (:meth:`Redactor.redact_batch`): the texts that need scanning
are joined with newlines (no pattern crosses one, and every look-around treats one like the
start or end of a text) and scanned in one pass, the matches mapped back to their texts; known
values are looked for in a conversation's texts joined. The texts may stay in Arrow
(:meth:`Redactor.redact_array`): only those a pass may change become Python strings. The
result is exactly what :meth:`Redactor.redact` gives text by text (a property test holds them
to it).
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

REDACTOR_VERSION = "1"
KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "TOKEN", "NAME", "ADDRESS", "FIELD")

# Local parts as people type them (RFC 5322 allows more, e.g. "&" and "=", which would turn
# URL query strings into e-mails).
_ATEXT = r"\w.%+'-"
_URL = r"(?P<url>(?<![\w@.])(?:https?://|www\.)[^\s<>\"'\]\)]+)"
_EMAIL = rf"(?P<email>(?<![{_ATEXT}])[{_ATEXT}]+@(?:[\w-]+\.)+[A-Za-z][\w-]+)"
_IBAN = r"(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b)"
_NUMBER = r"(?P<num>(?<![\w+])\+?\(?\d(?:[\d \-.()/]{0,24}\d)?(?!\w))"
_DIGIT = re.compile(r"[0-9]")
_ASCII_WORD_EDGE = re.compile(r"[A-Za-z0-9]")
# What a text must hold for the number or IBAN branches to change it (RE2, for Arrow): a
# phone or card has seven digits or more, so a run from its first digit to its last of
# seven characters or more, digits and separators; an IBAN two capitals, two digits and two
# groups of four at least.
_LONG_NUMBER = r"\p{Nd}[\p{Nd} \-.()/]{5,}\p{Nd}|[A-Z]{2}\p{Nd}{2}(?: ?[A-Z0-9]{4}){2}"


@lru_cache(maxsize=8)
def _pattern(url: bool, email: bool, digits: bool) -> re.Pattern[str]:
    """The alternation of just the patterns a text can hold: trying the e-mail branch at every
    word of a text without "@" is most of the cost of scanning it."""
    parts = [
        p for p, on in ((_URL, url), (_EMAIL, email), (_IBAN, digits), (_NUMBER, digits)) if on
    ]
    return re.compile("|".join(parts))


_PII = _pattern(True, True, True)

_QUERY_PARAM = re.compile(r"([?&;])([^=&#;\s]+)=([^&#;\s]*)")
_TOKENISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[\w\-.~%+/=]{16,}$")
_DATE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
_DECIMAL = re.compile(r"^\d+(?:[.,]\d{1,2})$")
_NUMBER_GROUPS = re.compile(r"\d+")

#: Customer keys that describe the session, not the person; never treated as known PII.
_NOT_PERSONAL = frozenset(
    {
        "id",
        "agent_id",
        "archived",
        "country",
        "url",
        "webchat_type",
        "is_external",
        "channel",
        "lang",
        "language",
        "locale",
        "timezone",
        "browser",
        "os",
        "device",
        "platform",
        "register_date",
        "created_at",
        "last_seen",
        "pipeline",
        "stage",
    }
)
_NO_VALUE = frozenset({"true", "false", "none", "null", "nan", "unknown", "n/a", "[]", "{}"})
_AUTO_NAME = re.compile(r"^(?:visitor|guest|user)\s*#?\s*\d*$", re.IGNORECASE)


@lru_cache(maxsize=4096)
def kind_for_key(key: str) -> str:
    """The placeholder kind for a value stored under ``key`` (a custom field or URL param)."""
    k = key.lower()
    if "mail" in k:
        return "EMAIL"
    if any(w in k for w in ("phone", "mobile", "tel", "whatsapp")):
        return "PHONE"
    if "name" in k:
        return "NAME"
    if any(
        w in k
        for w in (
            "token",
            "secret",
            "password",
            "passwd",
            "pwd",
            "auth",
            "sig",
            "key",
            "session",
            "sid",
            "otp",
            "code",
            "jwt",
            "credential",
        )
    ):
        return "TOKEN"
    if any(w in k for w in ("address", "street", "city", "zip", "postcode", "postal")):
        return "ADDRESS"
    return "FIELD"


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum payment card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _number_kind(raw: str) -> str | None:
    """CARD, PHONE or nothing, for a run of digits and separators."""
    digits = "".join(_NUMBER_GROUPS.findall(raw))
    n = len(digits)
    if 13 <= n <= 19 and luhn_ok(digits):
        return "CARD"
    if not 7 <= n <= 15 or _DATE.match(raw) or _DECIMAL.match(raw):
        return None
    if raw.startswith("+"):
        return "PHONE" if n >= 8 else None
    if raw.isdigit():
        return "PHONE" if n >= 9 or (raw.startswith("00") and n >= 10) else None
    # Separated forms: groups after the first have two digits or more, as numbers are spoken.
    groups = _NUMBER_GROUPS.findall(raw)
    return "PHONE" if all(len(g) >= 2 for g in groups[1:]) else None


class Redactor:
    """Replaces personal data by typed placeholders and counts what it replaced.

    One redactor serves a whole build; :meth:`redact` takes the known values of the
    conversation at hand (see :func:`known_values`).
    """

    version = REDACTOR_VERSION

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        # How many texts the pattern replacement being made stands for (see _scan).
        self._weight = 1

    def redact(self, text: str, known: tuple[tuple[str, str], ...] = ()) -> str:
        # Patterns first: an e-mail or URL is replaced whole before a name inside it is seen.
        url = "://" in text or "www." in text
        email = "@" in text
        digits = _DIGIT.search(text) is not None
        if url or email or digits:
            text = _pattern(url, email, digits).sub(self._replace, text)
        return self._known(text, known) if known else text

    def redact_batch(
        self,
        texts: Sequence[str],
        owners: Sequence[int],
        known: Sequence[tuple[tuple[str, str], ...]],
    ) -> list[str]:
        """``[self.redact(t, known[o]) for t, o in zip(texts, owners)]``, same texts and same
        counts, in a few passes over the whole batch instead of one call per text. ``owners``
        says which entry of ``known`` (one per conversation) belongs to each text."""
        if not texts:
            return []
        arr = pa.array(list(texts), pa.large_string())
        out: list[str] = self.redact_array(arr, np.asarray(owners, np.int64), known).to_pylist()
        return out

    def redact_array(
        self,
        texts: pa.Array,
        owners: npt.NDArray[np.int64],
        known: Sequence[tuple[tuple[str, str], ...]],
    ) -> pa.Array:
        """:meth:`redact_batch` for texts held by Arrow (no nulls): only the texts that may hold
        something to replace become Python strings, and the result is ``texts`` (as
        ``large_string``) with those replaced."""
        arr = texts.cast(pa.large_string())
        if not len(arr):
            return arr
        # What the patterns replace depends on the text alone, and bots say the same things
        # over and over: each distinct text is searched once, and what is replaced in it
        # counted as often as it occurs.
        encoded = pc.dictionary_encode(arr)
        distinct = encoded.dictionary
        weights = np.bincount(
            encoded.indices.to_numpy(zero_copy_only=False), minlength=len(distinct)
        )
        changed = self._patterns(distinct, weights)
        if changed:
            arr = _patched(distinct, changed).take(encoded.indices)
        return _patched(arr, self._known_in(arr, owners, known))

    def _patterns(self, arr: pa.Array, weights: npt.NDArray[np.int64]) -> dict[int, str]:
        """The texts of ``arr`` (``large_string``) the patterns change, by position, redacted;
        text ``i`` counts ``weights[i]`` times."""

        def has(pattern: str, regex: bool = False) -> npt.NDArray[np.bool_]:
            found = (pc.match_substring_regex if regex else pc.match_substring)(arr, pattern)
            return found.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]

        digits = has("[0-9]", regex=True)
        email = has("@")
        url = has("://") | has("www.")
        # A text without an ASCII digit is not searched for numbers, even Unicode ones, so
        # texts go apart by the branches they may hold. A branch that cannot match in a text
        # (the e-mail one without "@", the URL one without "://" or "www.") changes nothing,
        # so each group gets only its own branches. Texts holding nothing but numbers and no
        # run a phone, card or IBAN could match are left alone: shorter numbers stay as they are.
        # Only texts with digits and neither "@" nor a URL are held to it (below).
        only_digits = digits & ~email & ~url
        long_number = np.zeros(len(arr), dtype=bool)
        long_number[only_digits] = pc.match_substring_regex(
            arr.filter(pa.array(only_digits)), _LONG_NUMBER
        ).to_numpy(zero_copy_only=False)
        changed: dict[int, str] = {}
        for u, e, d in itertools.product((False, True), repeat=3):
            group = (url == u) & (email == e) & (digits == d)
            if not (u or e or d):
                continue
            if not (u or e):
                group &= long_number
            idx = np.flatnonzero(group)
            if len(idx):
                found = self._scan(
                    _pattern(u, e, d), arr.take(pa.array(idx)).to_pylist(), weights[idx].tolist()
                )
                at = idx.tolist()
                changed.update((at[j], new) for j, new in found.items())
        return changed

    def _known_in(
        self,
        texts: pa.Array,
        owners: npt.NDArray[np.int64],
        known: Sequence[tuple[tuple[str, str], ...]],
    ) -> dict[int, str]:
        """The texts in which known values of their conversation are replaced, by position.
        Each conversation's texts are joined by Arrow (texts of one conversation need not be
        next to each other) and lower-cased once; a value found in the joined text sends only
        the texts where it occurs through :meth:`_sub_known`."""
        owner = np.asarray(owners, dtype=np.int64)
        with_known = np.array([bool(k) for k in known], dtype=bool)
        picked = np.flatnonzero(with_known[owner]) if len(known) else owner[:0]
        if not len(picked):
            return {}
        picked = picked[np.argsort(owner[picked], kind="stable")]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(owner[picked])) + 1, [len(picked)]))
        mine = texts.take(pa.array(picked, pa.int64()))
        lists = pa.LargeListArray.from_arrays(pa.array(starts, pa.int64()), mine)
        joined = pc.binary_join(lists, pa.scalar("\n", pa.large_string())).to_pylist()
        conv_of = owner[picked[starts[:-1]]].tolist()
        # Where each text starts among all texts joined, in characters (a text and its newline).
        lengths = pc.utf8_length(mine).to_numpy(zero_copy_only=False)
        begins = np.concatenate(([0], np.cumsum(lengths + 1)))
        bounds = starts.tolist()
        changed: dict[int, str] = {}
        for k, (text, o) in enumerate(zip(joined, conv_of, strict=True)):
            # Lower-casing the joined texts equals joining them lower-cased: no case mapping
            # looks across a newline (the final sigma's context stops at one).
            low = text.lower()
            present = tuple(kv for kv in known[o] if kv[0] in low)
            if not present:
                continue
            b, e = bounds[k], bounds[k + 1]
            at = picked[b:e].tolist()
            offsets = (begins[b : e + 1] - begins[b]).tolist()
            if len(low) == len(text):
                # Lower-casing never shortens a text, so each text keeps its place in `low`:
                # only the texts where a value starts can hold it.
                places = sorted({bisect_right(offsets, p) - 1 for p in _occurrences(low, present)})
            else:
                # A letter whose lower case is longer ("İ") moves the texts after it.
                places = list(range(e - b))
            for j in places:
                part = text[offsets[j] : offsets[j + 1] - 1]
                redacted = self._known(part, present)
                if redacted is not part:
                    changed[at[j]] = redacted
        return changed

    def _scan(
        self, pattern: re.Pattern[str], texts: list[str], weights: list[int]
    ) -> dict[int, str]:
        """The texts of ``texts`` that ``pattern``'s matches change, by position, redacted; in
        one pass of ``pattern`` over them joined by newlines. What is replaced in text ``j``
        counts ``weights[j]`` times."""
        joined = "\n".join(texts)
        starts = list(accumulate((len(t) + 1 for t in texts), initial=0))
        edits: defaultdict[int, list[tuple[int, int, str]]] = defaultdict(list)
        try:
            for m in pattern.finditer(joined):
                # Most matches are short numbers (quantities, times): under seven characters a
                # number has under seven digits, which is neither a phone nor a card.
                if m.end() - m.start() < 7 and m.lastgroup == "num":
                    continue
                j = bisect_right(starts, m.start()) - 1
                self._weight = weights[j]
                new = self._replace(m)
                if new != m.group(0):
                    edits[j].append((m.start() - starts[j], m.end() - starts[j], new))
        finally:
            self._weight = 1
        out: dict[int, str] = {}
        for j, changes in edits.items():
            text, at = texts[j], 0
            parts: list[str] = []
            for start, end, new in changes:
                parts += (text[at:start], new)
                at = end
            parts.append(text[at:])
            out[j] = "".join(parts)
        return out

    def _known(self, text: str, known: tuple[tuple[str, str], ...]) -> str:
        low = text.lower()
        hits = tuple(kv for kv in known if kv[0] in low)
        if not hits:
            return text
        return self._sub_known(text, hits)

    def _sub_known(self, text: str, hits: tuple[tuple[str, str], ...]) -> str:
        pattern, kinds = _known_pattern(hits)

        def sub(m: re.Match[str]) -> str:
            kind = kinds[m.group(0).lower()]
            self.counts[kind] += 1
            return f"<{kind}>"

        return pattern.sub(sub, text)

    def _replace(self, m: re.Match[str]) -> str:
        group = m.lastgroup
        value = m.group(0)
        if group == "num":
            kind = _number_kind(value)
        elif group == "email":
            kind = "EMAIL"
        elif group == "url":
            return self._url(value)
        else:
            return self._iban(value)
        if kind is None:
            return value
        self.counts[kind] += self._weight
        return f"<{kind}>"

    def _iban(self, value: str) -> str:
        # The pattern may swallow a following word of four capitals; try shorter candidates.
        parts = value.split(" ")
        for end in range(len(parts), 0, -1):
            candidate = " ".join(parts[:end])
            if iban_ok(candidate):
                self.counts["IBAN"] += self._weight
                rest = " ".join(parts[end:])
                return "<IBAN>" + (" " + _PII.sub(self._replace, rest) if rest else "")
        return value[:2] + _PII.sub(self._replace, value[2:])

    def _url(self, url: str) -> str:
        if "?" not in url:
            return url

        def param(m: re.Match[str]) -> str:
            sep, name, value = m.groups()
            if not value:
                return m.group(0)
            kind = kind_for_key(name)
            if kind in ("FIELD", "ADDRESS"):
                if "@" in value:
                    kind = "EMAIL"
                elif _TOKENISH.match(value):
                    kind = "TOKEN"
                else:
                    return m.group(0)
            self.counts[kind] += self._weight
            return f"{sep}{name}=<{kind}>"

        head, _, query = url.partition("?")
        return head + "?" + _QUERY_PARAM.sub(param, "?" + query)[1:]


def _occurrences(text: str, values: tuple[tuple[str, str], ...]) -> Iterator[int]:
    """Where each of ``values`` (value, kind) starts in ``text``, overlapping ones included."""
    for value, _ in values:
        at = text.find(value)
        while at >= 0:
            yield at
            at = text.find(value, at + 1)


def _patched(texts: pa.Array, changed: dict[int, str]) -> pa.Array:
    """``texts`` with the texts at the positions of ``changed`` replaced."""
    if not changed:
        return texts
    where = np.arange(len(texts), dtype=np.int64)
    where[list(changed)] = len(texts) + np.arange(len(changed))
    new = pa.array(list(changed.values()), texts.type)
    return pa.concat_arrays([texts, new]).take(pa.array(where))


@lru_cache(maxsize=4096)
def _known_pattern(hits: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    kinds = {value: kind for value, kind in hits}
    # Longest first so "Jane Doe" wins over "Jane"; whole words only.
    alts = "|".join(re.escape(v) for v in sorted(kinds, key=len, reverse=True))
    if all(_ASCII_WORD_EDGE.match(v[0]) and _ASCII_WORD_EDGE.match(v[-1]) for v in kinds):
        # The same matches, compiled in a third of the time (a build compiles thousands): next
        # to a letter or digit, a word boundary is "no word character on the other side". Every
        # case variant of an ASCII letter ("K" for "k", "ſ" for "s") is a letter too.
        return re.compile(rf"\b(?:{alts})\b", re.IGNORECASE), kinds
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE), kinds


@lru_cache(maxsize=1 << 16)
def _text_values(key: str, value: str) -> tuple[tuple[str, str], ...]:
    # Cached: the same fields (country, plan, a returning customer's e-mail) come back in
    # snapshot after snapshot.
    if key.lower() in _NOT_PERSONAL:
        return ()
    return tuple((v.lower(), kind) for v, kind in _text_value_pairs(key, value.strip()))


def _text_value_pairs(key: str, text: str) -> Iterable[tuple[str, str]]:
    if key == "name":
        if _AUTO_NAME.match(text) or len(text) < 3:
            return
        yield text, "NAME"
        for part in text.replace(",", " ").split():
            if len(part) >= 3 and part.isalpha():
                yield part, "NAME"
        return
    kind = kind_for_key(key)
    # Custom lists arrive as Python reprs: "['shoes', 'bags']".
    items = re.findall(r"'([^']*)'|\"([^\"]*)\"", text) if text.startswith("[") else []
    for item in [a or b for a, b in items] or [text]:
        item = item.strip()
        if len(item) < 4 or item.lower() in _NO_VALUE:
            continue
        if item.isdigit() and len(item) < 6:
            continue
        yield item, kind


def known_values(customers: Iterable[str | None]) -> tuple[tuple[str, str], ...]:
    """(lower-cased value, kind) pairs from a conversation's ``customer`` JSON strings. A value
    two snapshots name with different kinds (``name`` in one, ``company`` in another) takes
    its kind from the snapshot that sorts first, so every build, in any process, redacts it
    the same way (a ``set``'s order follows the process's string hashing)."""
    return _merged(_customer_values(raw) for raw in sorted({c for c in customers if c}))


def known_values_of(
    snapshots: Sequence[str | None], conversations: Iterable[Sequence[int]]
) -> list[tuple[tuple[str, str], ...]]:
    """``[known_values(snapshots[i] for i in c) for c in conversations]`` for conversations
    given as indices into ``snapshots``, each in the order of the snapshots' texts: a build's
    batch reads each of its thousands of snapshots once (and a conversation's own, when it has
    but one, is merged once too)."""
    read: dict[int, tuple[tuple[str, str], ...]] = {}
    alone: dict[int, tuple[tuple[str, str], ...]] = {}

    def values(i: int) -> tuple[tuple[str, str], ...]:
        found = read.get(i)
        if found is None:
            raw = snapshots[i]
            found = read[i] = _snapshot_values(raw) if raw else ()
        return found

    out = []
    for conversation in conversations:
        if len(conversation) == 1:
            (i,) = conversation
            merged = alone.get(i)
            if merged is None:
                merged = alone[i] = _merged((values(i),))
            out.append(merged)
        else:
            out.append(_merged(values(i) for i in conversation))
    return out


def _merged(snapshots: Iterable[tuple[tuple[str, str], ...]]) -> tuple[tuple[str, str], ...]:
    """The values of ``snapshots`` (in text order), each with the kind it has first."""
    found: dict[str, str] = {}
    for values in snapshots:
        for v, kind in values:
            found.setdefault(v, kind)
    return tuple(sorted(found.items()))


def _snapshot_values(raw: str) -> tuple[tuple[str, str], ...]:
    """(value, kind) pairs of one ``customer`` JSON string, in the order of its keys."""
    try:
        customer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(customer, dict):
        return ()
    found: list[tuple[str, str]] = []
    # Session keys (the customer's id, country, URL...) are left before their values are
    # read: most of a snapshot's keys are those.
    for key, value in customer.items():
        if key in _NOT_PERSONAL or value is None or isinstance(value, bool):
            continue
        if _personal(key):
            found += _text_values(key, value if type(value) is str else str(value))
    return tuple(found)


#: Cached: a returning customer's snapshots repeat from one conversation to the next.
_customer_values = lru_cache(maxsize=4096)(_snapshot_values)


@lru_cache(maxsize=4096)
def _personal(key: str) -> bool:
    return key.lower() not in _NOT_PERSONAL
