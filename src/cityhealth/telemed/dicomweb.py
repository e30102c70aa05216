"""An adapter to a PACS over DICOMweb: QIDO-RS to find studies and count their images, WADO-RS to retrieve one.

Plain httpx (docs/decisions/telemed-ecg-imaging.md says why not a DICOMweb client library). The adapter keeps
no pixels: a retrieved study is handed to the caller (a consultation's viewer) and not stored. A study the
PACS does not have is `StudyNotFound` (404) naming its UID; a PACS that cannot be reached or answers with an
error is `PacsUnavailable` (502) naming the PACS and what it said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Self

import httpx

from cityhealth.errors import DomainError, NotFound, ValidationFailed
from cityhealth.telemed.dicom_reading import read_dataset

DICOM_JSON = "application/dicom+json"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_PAGE = 500
# (0020,1206) series and (0020,1208) instances in the study, (0008,0061) modalities, (0008,1030) description.
_STUDY_FIELDS = ("00201206", "00201208", "00080061", "00081030")


class PacsUnavailable(DomainError):
    status = 502
    code = "pacs_unavailable"
    title = "Bad gateway"


class StudyNotFound(NotFound):
    code = "study_not_found"


@dataclass(frozen=True)
class StudyMetadata:
    """A study as the PACS describes it over QIDO-RS."""

    study_instance_uid: str
    patient_id: str | None
    patient_name: str | None
    accession_number: str | None
    modalities: tuple[str, ...]
    description: str | None
    study_date: date | None
    series_count: int | None  # as the PACS reports it, when it does
    image_count: int | None


@dataclass(frozen=True)
class ImageCount:
    series: int
    images: int


@dataclass(frozen=True)
class RetrievedInstance:
    """One DICOM instance of a retrieved study: its UIDs and its bytes, as the PACS sent them."""

    sop_instance_uid: str
    series_instance_uid: str
    data: bytes


def check_uid(value: str, field: str = "study_instance_uid") -> str:
    """A DICOM UID (digits and dots, at most 64 characters) or a 422 naming it."""
    if len(value) > 64 or not _UID.fullmatch(value):
        raise ValidationFailed(
            "a DICOM UID is digits separated by dots, at most 64 characters",
            field=field,
            value=value[:80],
            rule="dicom_uid",
        )
    return value


class DicomWebPacs:
    """One PACS's DICOMweb service at `root` (e.g. http://pacs.example:8042/dicom-web)."""

    def __init__(
        self,
        name: str,
        root: str,
        *,
        timeout_s: float = 30.0,
        max_study_bytes: int = 512 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.root = root.rstrip("/")
        self.max_study_bytes = max_study_bytes
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search_studies(
        self,
        *,
        patient_id: str | None = None,
        accession_number: str | None = None,
        study_instance_uid: str | None = None,
        limit: int = 100,
    ) -> list[StudyMetadata]:
        """QIDO-RS: the studies matching every criterion given (exact matches)."""
        params: list[tuple[str, str | int | float | bool | None]] = [("includefield", field) for field in _STUDY_FIELDS]
        for key, value in (
            ("PatientID", patient_id),
            ("AccessionNumber", accession_number),
            ("StudyInstanceUID", study_instance_uid),
        ):
            if value is not None:
                params.append((key, value))
        params.append(("limit", limit))
        return [_study(item) for item in await self._qido("/studies", params)]

    async def study(self, study_instance_uid: str) -> StudyMetadata:
        """The one study with this UID, or StudyNotFound."""
        found = await self.search_studies(study_instance_uid=check_uid(study_instance_uid), limit=2)
        if not found:
            raise self._not_found(study_instance_uid)
        return found[0]

    async def count_images(self, study_instance_uid: str) -> ImageCount:
        """The study's series and images, counted from its instances (QIDO-RS, page by page)."""
        check_uid(study_instance_uid)
        series: set[str] = set()
        images = 0
        while True:
            page = await self._qido(
                f"/studies/{study_instance_uid}/instances",
                [("includefield", "0020000E"), ("limit", _PAGE), ("offset", images)],
            )
            images += len(page)
            series.update(uid for item in page if (uid := _value(item, "0020000E")))
            if len(page) < _PAGE:
                break
        if images == 0:
            raise self._not_found(study_instance_uid)
        return ImageCount(len(series), images)

    async def retrieve_study(self, study_instance_uid: str) -> list[RetrievedInstance]:
        """WADO-RS: every instance of the study, from a multipart/related response of application/dicom parts."""
        url = f"{self.root}/studies/{check_uid(study_instance_uid)}"
        headers = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 404:
                    raise self._not_found(study_instance_uid)
                self._check(response)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_study_bytes:
                        raise PacsUnavailable(
                            f"the study is larger than {self.max_study_bytes} bytes",
                            field="study_instance_uid",
                            value=study_instance_uid,
                            rule="max_study_bytes",
                        )
                content_type = response.headers.get("content-type", "")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        instances = [_instance(part) for part in split_multipart(bytes(body), content_type)]
        if not instances:
            raise self._not_found(study_instance_uid)
        return instances

    async def _qido(self, path: str, params: list[tuple[str, str | int | float | bool | None]]) -> list[dict[str, Any]]:
        try:
            response = await self._http.get(self.root + path, params=params, headers={"Accept": DICOM_JSON})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code in (204, 404):
            return []
        self._check(response)
        found = response.json() if response.content.strip() else []
        if not isinstance(found, list):
            raise PacsUnavailable(
                f"PACS {self.name} answered QIDO-RS with something other than a list",
                field="pacs",
                value=self.name,
                rule="qido_json",
            )
        return found

    def _check(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise PacsUnavailable(
                f"PACS {self.name} answered {response.status_code} to {response.request.method} "
                f"{response.request.url.path}",
                field="pacs",
                value=self.name,
                rule="pacs_status",
            )

    def _not_found(self, uid: str) -> StudyNotFound:
        return StudyNotFound(f"PACS {self.name} has no study {uid}", field="study_instance_uid", value=uid)

    def _unreachable(self, exc: httpx.HTTPError) -> PacsUnavailable:
        return PacsUnavailable(
            f"PACS {self.name} cannot be reached: {type(exc).__name__}",
            field="pacs",
            value=self.name,
            rule="pacs_reachable",
        )


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/related response's parts (RFC 2046), in order."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/") or found is None:
        raise PacsUnavailable(
            "the PACS's WADO-RS answer is not multipart",
            field="content_type",
            value=content_type[:80],
            rule="wado_multipart",
        )
    delimiter = b"\r\n--" + found.group(1).encode()
    parts: list[bytes] = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the close delimiter
            break
        _, _, rest = chunk.partition(b"\r\n")  # the rest of the delimiter line
        _, separator, content = rest.partition(b"\r\n\r\n")
        if not separator:
            if rest.startswith(b"\r\n"):  # a part without headers
                content = rest[2:]
            else:
                raise PacsUnavailable("a WADO-RS part has no end to its headers", rule="wado_multipart")
        parts.append(content)
    return parts


def _instance(data: bytes) -> RetrievedInstance:
    try:
        dataset = read_dataset(data, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many kinds on a damaged file
        raise PacsUnavailable(
            f"a retrieved part is not DICOM: {exc}".splitlines()[0][:200], rule="wado_dicom"
        ) from None
    return RetrievedInstance(str(dataset.get("SOPInstanceUID", "")), str(dataset.get("SeriesInstanceUID", "")), data)


def _value(item: dict[str, Any], tag: str) -> str | None:
    values = item.get(tag, {}).get("Value") or []
    if not values:
        return None
    first = values[0]
    if isinstance(first, dict):  # a person name
        first = first.get("Alphabetic") or first.get("Ideographic")
    return None if first is None else str(first)


def _count(item: dict[str, Any], tag: str) -> int | None:
    text = _value(item, tag)
    return int(text) if text is not None and text.isdigit() else None


def _study(item: dict[str, Any]) -> StudyMetadata:
    modalities = tuple(str(value) for value in item.get("00080061", {}).get("Value") or [])
    return StudyMetadata(
        _value(item, "0020000D") or "",
        _value(item, "00100020"),
        _value(item, "00100010"),
        _value(item, "00080050"),
        modalities,
        _value(item, "00081030"),
        _date(_value(item, "00080020")),
        _count(item, "00201206"),
        _count(item, "00201208"),
    )


def _date(text: str | None) -> date | None:
    """A DICOM DA value; one that names no real day is left out rather than guessed."""
    if text is None or not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
