"""An ECG tracing as the platform keeps it, whatever file it came in: leads of samples in microvolts.

Both readers (ecg_dicom.py, ecg_aecg.py) produce a `Tracing`; a file either reader refuses raises
`EcgFileRefused` naming the problem, a 422 whose `rule` says which check failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cityhealth.clock import BUSINESS_TZ
from cityhealth.errors import ValidationFailed

# The standard twelve leads, in the order a 12-lead report prints them.
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
MAX_FILE_BYTES = 16 * 1024 * 1024  # a 10 s 12-lead tracing at 1 kHz is well under 1 MB
MAX_SAMPLES_PER_LEAD = 600_000  # ten minutes at 1 kHz
MAX_LEADS = 16
MAX_MICROVOLTS = 1_000_000  # 1 V; an ECG's signals are millivolts
_CANONICAL = {name.upper(): name for name in STANDARD_LEADS}
_PREFIXES = ("MDC_ECG_LEAD_", "LEAD ", "LEAD_", "LEAD-")


class EcgFileRefused(ValidationFailed):
    """The uploaded file is not an ECG the platform can read; `rule` names the check that failed."""

    code = "ecg_file_refused"


@dataclass(frozen=True)
class Patient:
    """Who the file says the tracing is of (kept encrypted; never logged)."""

    identifier: str | None
    name: str | None


@dataclass(frozen=True)
class Tracing:
    """Leads sampled together: `samples[i]` are lead `leads[i]`'s values in microvolts."""

    source_format: str  # "dicom" or "aecg"
    source_uid: str | None  # the SOP Instance UID or the aECG document id, when the file has one
    leads: tuple[str, ...]
    sampling_rate_hz: float
    samples: tuple[tuple[int, ...], ...]
    acquired_at: datetime | None
    patient: Patient

    @property
    def sample_count(self) -> int:
        return len(self.samples[0]) if self.samples else 0

    @property
    def duration_s(self) -> float:
        return self.sample_count / self.sampling_rate_hz


def lead_name(raw: str) -> str:
    """'Lead aVR', 'MDC_ECG_LEAD_AVR' and 'avr' all name aVR; an unknown name is kept as written."""
    text = raw.strip()
    upper = text.upper()
    for prefix in _PREFIXES:
        if upper.startswith(prefix):
            text, upper = text[len(prefix) :].strip(), upper[len(prefix) :].strip()
    return _CANONICAL.get(upper, text)


def refuse(message: str, *, rule: str, field: str = "file", value: object = None) -> EcgFileRefused:
    return EcgFileRefused(message, field=field, value=value, rule=rule)


def check_tracing(tracing: Tracing) -> Tracing:
    """The checks every reader's result must pass, whichever format it came in."""
    if not tracing.leads:
        raise refuse("the file holds no ECG leads", rule="leads_present")
    if len(tracing.leads) > MAX_LEADS:
        raise refuse(
            f"the file holds {len(tracing.leads)} leads; at most {MAX_LEADS} are accepted",
            rule="max_leads",
            value=len(tracing.leads),
        )
    if len(set(tracing.leads)) != len(tracing.leads):
        raise refuse("a lead appears twice in the file", rule="leads_distinct", value=",".join(tracing.leads))
    if not 50 <= tracing.sampling_rate_hz <= 20_000:
        raise refuse(
            "the sampling rate must be between 50 and 20000 Hz",
            rule="sampling_rate",
            field="sampling_rate_hz",
            value=tracing.sampling_rate_hz,
        )
    lengths = {len(lead) for lead in tracing.samples}
    if len(lengths) != 1:
        raise refuse("the leads do not all have the same number of samples", rule="lead_lengths", value=sorted(lengths))
    if tracing.sample_count == 0 or tracing.sample_count > MAX_SAMPLES_PER_LEAD:
        raise refuse(
            f"each lead must hold 1 to {MAX_SAMPLES_PER_LEAD} samples", rule="sample_count", value=tracing.sample_count
        )
    if any(abs(value) > MAX_MICROVOLTS for lead in tracing.samples for value in lead):
        raise refuse(f"a sample lies beyond ±{MAX_MICROVOLTS} µV, which no ECG records", rule="sample_range")
    if any(re.search(r"[^\w .+-]", name) for name in tracing.leads):
        raise refuse(
            "a lead name holds characters other than letters, digits, space, '.', '+' or '-'", rule="lead_name"
        )
    return tracing


_TIMESTAMP = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?")


def parse_timestamp(text: str | None, *, field: str) -> datetime | None:
    """A DICOM DT or HL7 TS value ('20221115093012.5+0800'); without an offset it is the city's local time."""
    if text is None or not text.strip():
        return None
    found = _TIMESTAMP.fullmatch(text.strip())
    if found is None:
        raise refuse(
            f"{field} is not a timestamp of the form YYYYMMDDHHMMSS[.F][+ZZZZ]",
            rule="timestamp",
            field=field,
            value=text.strip()[:32],
        )
    year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = found.groups()
    zone = (
        BUSINESS_TZ
        if sign is None
        else timezone((1 if sign == "+" else -1) * timedelta(hours=int(zone_h), minutes=int(zone_m)))
    )
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:
        raise refuse(f"{field} names no real moment", rule="timestamp", field=field, value=text.strip()[:32]) from None
