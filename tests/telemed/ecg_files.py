"""ECG files built in code: DICOM 12-lead waveforms with pydicom and HL7 aECG XML documents."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cityhealth.telemed.ecg_tracing import STANDARD_LEADS

TWELVE_LEAD_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def square_wave(lead_index: int, count: int, rate: int) -> list[int]:
    """A lead's test signal in raw units: 0 for the first half of each second, (index + 1) x 40 after."""
    return [(lead_index + 1) * 40 if (i % rate) >= rate // 2 else 0 for i in range(count)]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def dicom_ecg(
    raw: Sequence[Sequence[int]] | None = None,
    *,
    leads: Sequence[str] = STANDARD_LEADS,
    rate: int = 500,
    seconds: int = 10,
    sensitivity: str = "2.5",
    unit: str = "uV",
    sop_class: str = TWELVE_LEAD_ECG,
    patient_id: str = "320102198001011234",
    truncate: int = 0,
) -> bytes:
    """A DICOM ECG waveform file; `raw` gives each lead's stored values (default: square waves)."""
    raw = raw if raw is not None else [square_wave(index, rate * seconds, rate) for index in range(len(leads))]
    count = len(raw[0])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.Modality = "ECG"
    dataset.PatientID, dataset.PatientName = patient_id, "Wang^Fang"
    dataset.AcquisitionDateTime = "20221115093012.500+0800"
    group = Dataset()
    group.MultiplexGroupLabel = "RHYTHM"
    group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = len(leads), count
    group.SamplingFrequency = str(rate)
    group.WaveformBitsAllocated, group.WaveformSampleInterpretation = 16, "SS"
    channels = []
    for name in leads:
        channel = Dataset()
        channel.ChannelSourceSequence = [_code(f"2:{len(channels) + 1}", "MDC", f"Lead {name}")]
        channel.ChannelSensitivity, channel.ChannelSensitivityCorrectionFactor = sensitivity, "1"
        channel.ChannelSensitivityUnitsSequence = [_code(unit, "UCUM", unit)]
        channel.ChannelBaseline, channel.WaveformBitsStored = "0", 16
        channels.append(channel)
    group.ChannelDefinitionSequence = channels
    interleaved = [raw[lead][i] for i in range(count) for lead in range(len(leads))]
    data = struct.pack(f"<{len(interleaved)}h", *interleaved)
    group.WaveformData = data[: len(data) - truncate] if truncate else data
    dataset.WaveformSequence = [group]
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def aecg(
    digits: Sequence[Sequence[int]] | None = None,
    *,
    leads: Sequence[str] = STANDARD_LEADS,
    increment: str = "0.002",
    scale: str = "5",
    patient_id: str = "320102198001011234",
    prolog: str = "",
) -> str:
    """An HL7 aECG document; `digits` gives each lead's values (default: square waves at 500 Hz for 10 s)."""
    digits = digits if digits is not None else [square_wave(index, 5000, 500) for index in range(len(leads))]
    sequences = "".join(
        f"""<component><sequence><code code="MDC_ECG_LEAD_{name.upper()}" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="SLIST_PQ"><origin value="0" unit="uV"/><scale value="{scale}" unit="uV"/>
        <digits>{" ".join(str(value) for value in values)}</digits></value></sequence></component>"""
        for name, values in zip(leads, digits, strict=True)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>{prolog}
<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="2.16.840.1.113883.3.1" extension="ecg-0001"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12"/>
  <effectiveTime><low value="20221115093012"/><high value="20221115093022"/></effectiveTime>
  <componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject>
    <id extension="{patient_id}"/>
    <subjectDemographicPerson><name><family>Wang</family><given>Fang</given></name></subjectDemographicPerson>
  </trialSubject></subject></subjectAssignment></componentOf></timepointEvent></componentOf>
  <component><series>
    <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="20221115093012"/></effectiveTime>
    <component><sequenceSet>
      <component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="GLIST_TS"><head value="20221115093012"/><increment value="{increment}" unit="s"/></value>
      </sequence></component>
      {sequences}
    </sequenceSet></component>
  </series></component>
</AnnotatedECG>
"""


def image_instance(
    study_uid: str, series_uid: str, *, number: int, patient_id: str, accession: str, modality: str = "CT"
) -> tuple[str, bytes]:
    """A tiny (4 x 4, 8-bit) image instance of a study; its SOP Instance UID and bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = CT_IMAGE, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, series_uid
    dataset.PatientID, dataset.PatientName = patient_id, "Li^Lei"
    dataset.AccessionNumber, dataset.Modality = accession, modality
    dataset.StudyDate, dataset.StudyTime, dataset.StudyDescription = "20221115", "093000", "Chest CT"
    dataset.SeriesNumber, dataset.InstanceNumber = 1, number
    dataset.Rows = dataset.Columns = 4
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    dataset.PixelData = bytes(range(number, number + 16))
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return dataset.SOPInstanceUID, buffer.getvalue()
