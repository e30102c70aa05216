"""Text no database column can hold: a NUL character (U+0000) in a request is refused before any route sees it.

PostgreSQL's text types cannot store U+0000 and refuse the whole statement; a NUL in a query parameter that
reached a lookup was a 500 (found by the contract test's generated inputs on PostgreSQL). Every route is
guarded at once by `strict_json.StrictJsonMiddleware`, the one layer that already looks at every request: the
URL (path and query) and the JSON body it parses. The answer is a 422 `validation_failed`, rule `text.nul`,
naming the parameter (or `path`, or `body`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Scope

from cityhealth.errors import ValidationFailed

NUL_RULE = "text.nul"


def nul_refusal(where: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: a NUL character (U+0000) is not accepted in text", field=where, value=None,
                            rule=NUL_RULE)


def nul_in_url(scope: Scope) -> str | None:
    """Where the request's URL holds a NUL: the query parameter's name, `query`, `path`; None when nowhere."""
    query: bytes = scope.get("query_string") or b""
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "") or "query"
    if "\x00" in scope.get("path", ""):
        return "path"
    return None


def nul_escaped_in_json(body: bytes) -> bool:
    """Whether a JSON text holds the escape \\u0000 (its only way to carry a NUL): an even run of backslashes
    before it is escaped backslashes, and the text then holds the six characters, not a NUL."""
    start = 0
    while (found := body.find(b"\\u0000", start)) >= 0:
        first = found
        while first > 0 and body[first - 1] == 0x5C:  # backslashes before this one
            first -= 1
        if (found - first) % 2 == 0:
            return True
        start = found + 1
    return False
