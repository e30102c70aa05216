"""The segments of a lab message, read by splitting on the message's own encoding characters.

python-hl7 builds a container for every field, repetition and component of the segments it parses: most of
a message's reading time, for the dozen fields the listener reads of each segment. When the header declares
its encoding characters plainly (MSH, the field separator, four distinct encoding characters, the field
separator again: `MSH|^~\\&|`), a segment is kept as its list of fields and a field is split only when read,
with the same result as python-hl7's tree (a property test compares the two on intact and damaged messages).
Any other header is read through python-hl7's tree, whose handling of odd headers stays the reference.

Both readings answer the same questions: a component of a field's repetition (its first subcomponent,
unescaped with python-hl7's `unescape`, except MSH-1 and MSH-2) and how many repetitions a field has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import hl7
from hl7.util import unescape


class Segment(Protocol):
    name: str

    def get(self, number: int, component: int = 1, repeat: int = 1) -> str: ...

    def repeats(self, number: int) -> int: ...


class _Separators:
    """What python-hl7's `unescape` reads of a container: its escape character and separators."""

    __slots__ = ("esc", "separators")

    def __init__(self, field: str, component: str, repetition: str, escape: str, subcomponent: str) -> None:
        self.esc = escape
        # python-hl7's order: segment, field, repetition, component, subcomponent
        self.separators = "\r" + field + repetition + component + subcomponent


class SplitSegment:
    """A segment as its fields' texts (for MSH: "MSH", the field separator, the encoding characters, ...)."""

    __slots__ = ("_fields", "_seps", "name")

    def __init__(self, fields: list[str], seps: _Separators) -> None:
        self._fields = fields
        self._seps = seps
        self.name = fields[0].strip().upper()

    def get(self, number: int, component: int = 1, repeat: int = 1) -> str:
        """A component of a field's repetition as text (its first subcomponent), unescaped; "" when absent."""
        if number >= len(self._fields):
            return ""
        seps = self._seps.separators
        value = self._fields[number]
        if repeat > 1 or seps[2] in value:
            repetitions = value.split(seps[2])
            if repeat > len(repetitions):
                return ""
            value = repetitions[repeat - 1]
        if seps[3] in value:
            components = value.split(seps[3])
            if component > len(components):
                return ""
            value = components[component - 1]
        elif component > 1:
            return ""
        if seps[4] in value:
            value = value.split(seps[4], 1)[0]
        if self._seps.esc in value and not (number <= 2 and self.name == "MSH"):
            value = unescape(self._seps, value)
        return value.strip()

    def repeats(self, number: int) -> int:
        return self._fields[number].count(self._seps.separators[2]) + 1 if number < len(self._fields) else 0


class TreeSegment:
    """A segment of python-hl7's tree (a field holds repetitions, a repetition components), read by index:
    its `extract_field` builds an accessor per call and raises on some absent paths."""

    __slots__ = ("_segment", "name")

    def __init__(self, segment: Any) -> None:
        self._segment = segment
        self.name = str(segment[0]).strip().upper()

    def get(self, number: int, component: int = 1, repeat: int = 1) -> str:
        segment = self._segment
        if number >= len(segment):
            return ""
        field = segment[number]
        if repeat > len(field):
            return ""
        item = field[repeat - 1]
        if isinstance(item, str):
            value = item if component == 1 else ""
        elif component > len(item):
            return ""
        else:
            part = item[component - 1]
            value = part if isinstance(part, str) else (str(part[0]) if part else "")
        if segment.esc in value and not (number <= 2 and self.name == "MSH"):
            value = unescape(segment, value)
        return str(value).strip()

    def repeats(self, number: int) -> int:
        return len(self._segment[number]) if number < len(self._segment) else 0


def plain_separators(text: str) -> _Separators | None:
    """The encoding characters of a header that declares them plainly (`MSH|^~\\&|`), else None."""
    if len(text) < 9 or text[8] != text[3]:
        return None
    characters = text[3:8]
    if len(set(characters)) != 5 or "\r" in characters or any(c.isalnum() or c.isspace() for c in characters):
        return None
    return _Separators(*characters)


def split_segments(text: str, *, tree: bool = False) -> Iterator[Segment]:
    """The segments of a normalised message (segments ended by CR, starting with MSH); python-hl7's tree when
    the header's encoding characters are not plain or `tree` is asked. Raises what python-hl7 raises."""
    seps = None if tree else plain_separators(text)
    if seps is None:
        for segment in hl7.parse(text):
            yield TreeSegment(segment)
        return
    field = seps.separators[1]
    for line in text.split("\r"):
        if line[:3] == "MSH":  # as python-hl7 splits any MSH: its own separator, encoding characters, the rest
            own = line[3]
            end = line.find(own, 4)
            rest = line[end + 1 :]
            yield SplitSegment(["MSH", own, line[4:end], *(rest.split(field) if rest else ())], seps)
        else:
            yield SplitSegment(line.split(field), seps)
