"""How the room opens a DICOM file: with pydicom, never echoing the file's values to logs or warnings.

pydicom reports a value that breaks its VR's rules by logging and warning it, value included; in a DICOM
file from a hospital that value may be the patient's name or identifier, and personal data never goes to
logs. So value validation on reading is off (pydicom's IGNORE mode, set once for the process: the platform
only reads DICOM here) and what warnings remain while a file is read are dropped. A file's problems still
surface: as exceptions, which the readers turn into errors naming the rule that failed.
"""

from __future__ import annotations

import io
import warnings

import pydicom
from pydicom import config
from pydicom.dataset import FileDataset

config.settings.reading_validation_mode = config.IGNORE


def read_dataset(data: bytes, *, stop_before_pixels: bool = False) -> FileDataset:
    """The parsed file; pydicom's own exceptions (InvalidDicomError and others) pass to the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
