"""Request bodies declared JSON are parsed as RFC 8259 JSON, strictly, before any route sees them."""

from __future__ import annotations

import email.message
import functools

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhealth.errors import DomainError, MalformedBody
from cityhealth.nul_text import nul_escaped_in_json, nul_in_url, nul_refusal
from cityhealth.observability import header, problem_response


@functools.lru_cache(maxsize=64)
def is_json(content_type: str) -> bool:
    """application/json and every application/*+json, the types FastAPI parses as JSON."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJsonMiddleware:
    """Refuses a JSON body Python's json module would accept but RFC 8259 does not — NaN, Infinity, numbers
    beyond a double, lone surrogates (which no UTF-8 response or database column can hold) — with a 422
    `malformed_body`, rule `json.malformed` (as the collection room's own parsers answer), naming the
    position, for every route at once; and a NUL character (which no text column can store) in the path, a
    query parameter or a JSON string (`\\u0000`) with a 422, rule `text.nul` (nul_text). The collection
    uploads (bulk and real time) parse their own bodies with the same strict parser, so their bodies are
    passed through unread (their URLs are checked)."""

    def __init__(self, app: ASGIApp, *, self_parsed_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.self_parsed_paths = self_parsed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul_at = nul_in_url(scope)
        if nul_at is not None:
            await _refuse(nul_refusal(nul_at), scope, receive, send)
            return
        if self.self_parsed_paths and scope["path"].startswith(self.self_parsed_paths):
            await self.app(scope, receive, send)
            return
        content_type = header(scope, b"content-type")
        if content_type is None or not is_json(content_type.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to check
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await _refuse(MalformedBody(
                    f"the body is not valid JSON (RFC 8259): {exc.msg} at character {exc.pos}",
                    field="body", value=None, rule="json.malformed"), scope, receive, send)
                return
            if nul_escaped_in_json(body):
                await _refuse(nul_refusal("body"), scope, receive, send)
                return
        await self.app(scope, _replay([body], None, receive), send)


async def _refuse(error: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(error, scope.get("state", {}).get("request_id"))
    await response(scope, receive, send)


def _replay(bodies: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever the connection sends next."""
    queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False} for body in bodies]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
