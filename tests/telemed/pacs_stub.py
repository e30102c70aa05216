"""A stand-in PACS for the object-rule seeds (which get no fixtures, so not Orthanc): a QIDO-RS search answers
an empty list, a WADO-RS retrieve of any study one tiny image. On 127.0.0.1, started once per process."""

from __future__ import annotations

import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydicom.uid import generate_uid

from tests.telemed.ecg_files import image_instance

BOUNDARY = "stub-boundary"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if parts[-1] == "studies":
            self._answer(b"[]", "application/dicom+json")
        elif len(parts) >= 2 and parts[-2] == "studies":
            _, data = image_instance(parts[-1], generate_uid(), number=1, patient_id="STUB1", accession="STUB")
            body = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
            self._answer(body + f"\r\n--{BOUNDARY}--\r\n".encode(),
                         f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')
        else:
            self._answer(b"", "text/plain", status=404)

    def _answer(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@cache
def stub_pacs_root() -> str:
    """The stand-in's DICOMweb root."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="stub-pacs").start()
    return f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
