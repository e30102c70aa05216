"""The current request's id and client address, as context variables.

Set by the HTTP middleware (observability), read by the logs and the audit trail. They live apart from
the middleware so that code run outside a request (a CLI command writing audit events, the bulletin)
does not import the web framework only to find them empty.
"""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
client_address_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)
