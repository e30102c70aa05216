"""Reading an ECG from a DICOM waveform file (the 12-lead and general ECG waveform IODs) with pydicom.

The samples are decoded here from Waveform Data with the standard library (no NumPy): the first multiplex
group is the rhythm (median beats, when a device adds them, come later), its channels interleaved sample by
sample, each scaled by its sensitivity, correction factor and baseline into microvolts.
"""

from __future__ import annotations

import struct
import warnings
from typing import Any

from cityhealth.telemed.dicom_reading import read_dataset
from cityhealth.telemed.ecg_tracing import (
    MAX_FILE_BYTES,
    EcgFileRefused,
    Patient,
    Tracing,
    check_tracing,
    lead_name,
    parse_timestamp,
    refuse,
)

ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG waveform",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "general ECG waveform",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "ambulatory ECG waveform",
}
# (bits allocated, sample interpretation) -> struct format of one sample, little endian.
_SAMPLE_FORMATS = {(8, "SB"): "b", (8, "UB"): "B", (16, "SS"): "h", (16, "US"): "H", (32, "SL"): "i", (32, "UL"): "I"}
_TO_MICROVOLTS = {"uV": 1.0, "mV": 1000.0, "V": 1_000_000.0}


def read_dicom(data: bytes) -> Tracing:
    """The tracing of a DICOM ECG waveform file, or EcgFileRefused naming what is wrong with it."""
    with warnings.catch_warnings():  # pydicom decodes elements lazily, warning as it goes (dicom_reading.py)
        warnings.simplefilter("ignore")
        return _read(data)


def _read(data: bytes) -> Tracing:
    if len(data) > MAX_FILE_BYTES:
        raise refuse(f"the file is larger than {MAX_FILE_BYTES} bytes", rule="max_size", value=len(data))
    try:
        dataset = read_dataset(data)
    except Exception as exc:  # pydicom raises many kinds (InvalidDicomError, BytesLengthException, EOFError...)
        raise refuse(f"the file is not DICOM: {_short(exc)}", rule="dicom") from None
    try:  # elements decode lazily: a damaged one raises whatever pydicom meets first, wherever it is read
        return check_tracing(_tracing(dataset))
    except EcgFileRefused:
        raise
    except Exception as exc:
        raise refuse(f"the DICOM ECG cannot be decoded: {_short(exc)}", rule="waveform_data") from None


def _tracing(dataset: Any) -> Tracing:
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class not in ECG_SOP_CLASSES:
        raise refuse(
            "the DICOM file is not an ECG waveform (its SOP class must be a 12-lead, general or "
            "ambulatory ECG waveform)",
            rule="ecg_sop_class",
            field="SOPClassUID",
            value=sop_class[:64],
        )
    groups = dataset.get("WaveformSequence")
    if not groups:
        raise refuse("the DICOM ECG holds no waveform sequence", rule="waveform_sequence", field="WaveformSequence")
    leads, rate, samples = _decode_group(groups[0])
    acquired = parse_timestamp(_acquisition_text(dataset), field="AcquisitionDateTime")
    patient = Patient(_text(dataset.get("PatientID")), _text(dataset.get("PatientName")))
    return Tracing("dicom", _text(dataset.get("SOPInstanceUID")), leads, rate, samples, acquired, patient)


def _decode_group(group: Any) -> tuple[tuple[str, ...], float, tuple[tuple[int, ...], ...]]:
    channels = int(group.NumberOfWaveformChannels)
    count = int(group.NumberOfWaveformSamples)
    rate = float(group.SamplingFrequency)
    key = (int(group.WaveformBitsAllocated), str(group.WaveformSampleInterpretation))
    if key not in _SAMPLE_FORMATS:
        raise refuse(
            f"waveform samples of {key[0]} bits, interpretation {key[1]}, are not supported",
            rule="sample_format",
            field="WaveformSampleInterpretation",
            value=key[1],
        )
    definitions = list(group.ChannelDefinitionSequence)
    if len(definitions) != channels:
        raise refuse(
            "the channel definitions do not match the number of channels",
            rule="channel_count",
            field="NumberOfWaveformChannels",
            value=channels,
        )
    raw: bytes = group.WaveformData
    size = struct.calcsize(_SAMPLE_FORMATS[key])
    if len(raw) < channels * count * size:
        raise refuse(
            "the waveform data is shorter than its channels and samples say",
            rule="waveform_length",
            field="WaveformData",
            value=len(raw),
        )
    values = struct.unpack(f"<{channels * count}{_SAMPLE_FORMATS[key]}", raw[: channels * count * size])
    leads: list[str] = []
    samples: list[tuple[int, ...]] = []
    for index, definition in enumerate(definitions):
        leads.append(_channel_name(definition, index))
        factor = _microvolts_per_unit(definition)
        baseline = float(definition.get("ChannelBaseline", 0.0) or 0.0)
        samples.append(tuple(round((value * factor[0] + baseline) * factor[1]) for value in values[index::channels]))
    return tuple(leads), rate, tuple(samples)


def _microvolts_per_unit(definition: Any) -> tuple[float, float]:
    """(sensitivity x correction, microvolts per sensitivity unit) of one channel."""
    sensitivity = float(definition.get("ChannelSensitivity", 1.0) or 1.0)
    correction = float(definition.get("ChannelSensitivityCorrectionFactor", 1.0) or 1.0)
    units = definition.get("ChannelSensitivityUnitsSequence")
    unit = str(units[0].CodeValue) if units else "uV"
    if unit not in _TO_MICROVOLTS:
        raise refuse(
            "a channel's sensitivity unit must be uV, mV or V",
            rule="channel_unit",
            field="ChannelSensitivityUnitsSequence",
            value=unit[:16],
        )
    return sensitivity * correction, _TO_MICROVOLTS[unit]


def _channel_name(definition: Any, index: int) -> str:
    sources = definition.get("ChannelSourceSequence")
    if sources:
        meaning = _text(sources[0].get("CodeMeaning")) or _text(sources[0].get("CodeValue"))
        if meaning:
            return lead_name(meaning)
    label = _text(definition.get("ChannelLabel"))
    return lead_name(label) if label else f"channel {index + 1}"


def _acquisition_text(dataset: Any) -> str | None:
    for name in ("AcquisitionDateTime", "ContentDate", "StudyDate"):
        value = _text(dataset.get(name))
        if not value:
            continue
        if name == "ContentDate":
            return value + (_text(dataset.get("ContentTime")) or "")
        if name == "StudyDate":
            return value + (_text(dataset.get("StudyTime")) or "")
        return value
    return None


def _text(value: object) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:160]
