"""The whole OpenAPI document, exercised by Schemathesis over real HTTP, anonymously and as a platform
administrator: no answer may be a 5xx, and every answer must be one the document declares — its status,
its content type and its body schema.

Bounded and deterministic: a fixed number of examples per operation and generation mode, derandomized, no
shrinking (a failure is reported as found). The report names each failing operation with Schemathesis's
own account of the case (a curl line to replay it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import BACKEND
from tests.factories.security import admin_headers

EXAMPLES_PER_OPERATION_AND_MODE = 5
# Anonymous callers are turned away whatever the input: one example per operation and mode shows it (see the
# anonymous pass).
ANONYMOUS_EXAMPLES_PER_OPERATION_AND_MODE = 1
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HeadersFactory = Callable[[], dict[str, str]]


def _exercise(base_url: str, fresh_headers: HeadersFactory, examples: int) -> list[str]:
    """Every operation in both generation modes; returns one line per failing operation and mode."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    with requests.Session() as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            # Fresh credentials per operation: a logout or a deactivation must not blind the operations after.
            headers = fresh_headers()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _examples(operation, mode, base_url, http, headers, examples)()
                except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    continue
                except (Exception, BaseExceptionGroup) as failure:  # collected, then reported together
                    failures.append(f"{operation.label} [{mode.value}]: {failure}")
    return failures


def _examples(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str, http: requests.Session,
              headers: dict[str, str], examples: int) -> Callable[[], None]:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, session=http, headers=headers, checks=CHECKS)

    return call  # type: ignore[no-any-return]


async def _run(base_url: str, headers: Callable[[], Awaitable[dict[str, str]]],
               examples: int = EXAMPLES_PER_OPERATION_AND_MODE) -> list[str]:
    loop = asyncio.get_running_loop()

    def fresh_headers() -> dict[str, str]:  # minted in the server's loop, from Schemathesis's thread
        return asyncio.run_coroutine_threadsafe(headers(), loop).result()

    return await asyncio.to_thread(_exercise, base_url, fresh_headers, examples)


async def _anonymous() -> dict[str, str]:
    return {}


# On the embedded default only: the administrator's pass below sends the same generated inputs to every
# operation, the public ones included, on both backends; what is left to this pass is being turned away
# without credentials, which happens whatever the input and before any statement runs, so one example per
# operation and mode shows it (the administrator's pass, with five, takes over two minutes).
@pytest.mark.skipif(BACKEND != "sqlite", reason="the anonymous pass does not depend on the backend")
async def test_anonymous_callers_get_only_documented_answers_and_no_5xx(live_server: str) -> None:
    failures = await _run(live_server, _anonymous, ANONYMOUS_EXAMPLES_PER_OPERATION_AND_MODE)
    assert failures == [], "\n\n".join(failures)


async def test_a_platform_administrator_gets_only_documented_answers_and_no_5xx(app: FastAPI,
                                                                               live_server: str) -> None:
    failures = await _run(live_server, lambda: admin_headers(app))
    assert failures == [], "\n\n".join(failures)
