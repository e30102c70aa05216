"""The slot feed's per-process cache: the rows and rendered files of the feed's current state.

Entries are keyed by the state's validator, so a cached file is never stale: a changed state has another key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FeedCache:
    max_documents: int = 64  # files of one state (three kinds, a few `_since` values and base URLs)
    rows_key: str | None = None
    rows: Any = None  # the state's published sessions and places (publication.FeedData)
    # A Slot's NDJSON line by session id, with what it was rendered from: most lines outlive a state.
    lines: dict[int, tuple[tuple[Any, ...], bytes]] = field(default_factory=dict)
    # The sessions read again since the last full Slot file (None: not known, every line is checked), and what
    # that file's lines were made of besides their rows (the clock's turning points, the places, the base URL).
    changed: set[int] | None = None
    slots_context: tuple[Any, ...] | None = None
    documents: dict[tuple[Any, ...], bytes] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def document(self, key: tuple[Any, ...]) -> bytes | None:
        return self.documents.get(key)

    def keep(self, key: tuple[Any, ...], body: bytes) -> None:
        if len(self.documents) >= self.max_documents:
            self.documents.clear()  # the files of earlier states: never asked for again by their key
        self.documents[key] = body
