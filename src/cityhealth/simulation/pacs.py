"""The region's imaging archive as the simulated month's hospitals use it: a DICOMweb (QIDO-RS) service on
loopback that the platform queries when a study is recorded, as it would a hospital's PACS.

It holds each study's metadata and its instances' series, never pixels: the platform counts a study's images
from the instance list (docs/decisions/telemed-ecg-imaging.md), so the simulated archive lists instances and
nothing more. Served by uvicorn in the run's event loop on a free port; its root goes into the platform's
configuration (`Settings.telemed_pacs`) under PACS_NAME before the platform is built.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityhealth.simulation.actors import SimulationError

PACS_NAME = "regional-imaging-cloud"
IMAGES_PER_SERIES = 250
START_TIMEOUT_S = 30.0
DICOM_JSON = "application/dicom+json"


@dataclass(frozen=True)
class Study:
    uid: str
    accession: str
    patient_id: str
    modality: str
    study_date: date
    images: int

    @property
    def series(self) -> int:
        return max(1, -(-self.images // IMAGES_PER_SERIES))


class SimulatedPacs:
    def __init__(self) -> None:
        self.studies: dict[str, Study] = {}
        self.root = ""
        self.queries = 0
        self.number = 0  # studies numbered so far
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, study: Study) -> None:
        self.studies[study.uid] = study

    async def __aenter__(self) -> Self:
        app = Starlette(routes=[Route("/dicom-web/studies", self._search),
                                Route("/dicom-web/studies/{uid}/instances", self._instances)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not self._server.started:
                    if self._task.done():
                        break
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass
        if not self._server.started:
            await self.__aexit__(None, None, None)
            raise SimulationError("the simulated PACS did not start", code="simulation_pacs")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{port}/dicom-web"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, START_TIMEOUT_S)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task

    async def _search(self, request: Request) -> Response:
        self.queries += 1
        study = self.studies.get(request.query_params.get("StudyInstanceUID", ""))
        found = [] if study is None else [{
            "0020000D": {"vr": "UI", "Value": [study.uid]},
            "00100020": {"vr": "LO", "Value": [study.patient_id]},
            "00080050": {"vr": "SH", "Value": [study.accession]},
            "00080061": {"vr": "CS", "Value": [study.modality]},
            "00081030": {"vr": "LO", "Value": [f"{study.modality} 检查"]},
            "00080020": {"vr": "DA", "Value": [study.study_date.strftime("%Y%m%d")]},
            "00201206": {"vr": "IS", "Value": [study.series]},
            "00201208": {"vr": "IS", "Value": [study.images]},
        }]
        return Response(orjson.dumps(found), media_type=DICOM_JSON)

    async def _instances(self, request: Request) -> Response:
        self.queries += 1
        study = self.studies.get(request.path_params["uid"])
        if study is None:
            return Response(b"[]", media_type=DICOM_JSON)
        offset = int(request.query_params.get("offset", 0))
        limit = int(request.query_params.get("limit", 1000))
        items = [{"0020000E": {"vr": "UI", "Value": [f"{study.uid}.{1 + index // IMAGES_PER_SERIES}"]}}
                 for index in range(offset, min(study.images, offset + limit))]
        return Response(orjson.dumps(items), media_type=DICOM_JSON)
