"""A real PACS for the imaging tests: Debian's Orthanc with its DICOMweb plugin, on loopback, once per session.

scripts/orthanc-deps installs the packages (make's test targets run it; the fixture runs it too when the
server is missing). Without them the PACS tests skip, saying so. The server gets a generated configuration,
storage and index in a temporary folder, a free port, no DICOM listener and no remote access, and is stopped
when the session ends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
DEPS = Path(__file__).resolve().parents[2] / "scripts" / "orthanc-deps"


def _installed() -> bool:
    return ORTHANC.exists() and DICOMWEB_PLUGIN.exists()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running Orthanc (its DICOMweb root is + '/dicom-web')."""
    if not _installed():
        subprocess.run([str(DEPS)], check=False, timeout=600)  # noqa: S603 - the project's own script
    if not _installed():
        pytest.skip(
            "Orthanc and its DICOMweb plugin are not installed and could not be installed "
            "(Debian packages orthanc, orthanc-dicomweb; see scripts/orthanc-deps)"
        )
    folder = tmp_path_factory.mktemp("orthanc")
    port = _free_port()
    config = {
        "Name": "cityhealth-test-pacs",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # loopback callers only
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpDescribeErrors": True,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and our generated configuration
        [str(ORTHANC), str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc stopped at start: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/dicom-web/studies", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Orthanc did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
