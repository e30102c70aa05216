"""A serving process's start-up heap, kept out of the cyclic garbage collector's full collections.

A server or listener process imports the whole platform and builds its app, routes, schemas, metadata and
compiled statements once: hundreds of thousands of objects that live as long as the process. CPython's full
(oldest-generation) collection walks every one of them each time it runs, and while it runs nothing else in
the process does: every request or message in flight waits. Moved into the permanent generation once the
process has started, they are no longer walked; a full collection then covers only what serving made since.
Objects made later are collected as before, and reference counting frees the start-up objects that are
dropped (only a cycle among them would be kept).
"""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Collect what start-up left, then freeze the rest (called once a process has built what it serves with:
    the listener once it listens, a server worker once its app is made)."""
    gc.collect()
    gc.freeze()
