"""Reading an ECG from HL7 annotated ECG (aECG) XML, with the standard library's expat.

The parser refuses any document type declaration, entity declaration or external entity before it
expands anything (the defusedxml rules: no billion laughs, no external files or URLs), then the tree is
read as HL7 v3 aECG: the first series' first sequence set, a GLIST_TS time sequence giving the sampling
increment and a SLIST_PQ sequence per lead (origin + scale x digits, in uV or mV).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import NoReturn
from xml.parsers import expat

from cityhealth.telemed.ecg_tracing import (
    MAX_FILE_BYTES,
    Patient,
    Tracing,
    check_tracing,
    lead_name,
    parse_timestamp,
    refuse,
)

V3 = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_TO_MICROVOLTS = {"uV": 1.0, "mV": 1000.0, "V": 1_000_000.0}
_TO_SECONDS = {"s": 1.0, "ms": 0.001}


def read_aecg(data: bytes) -> Tracing:
    """The tracing of an aECG document, or EcgFileRefused naming what is wrong with it."""
    if len(data) > MAX_FILE_BYTES:
        raise refuse(f"the file is larger than {MAX_FILE_BYTES} bytes", rule="max_size", value=len(data))
    root = parse_xml(data)
    if root.tag != f"{V3}AnnotatedECG":
        raise refuse(
            "the XML document is not an HL7 aECG (its root must be AnnotatedECG in urn:hl7-org:v3)",
            rule="aecg_root",
            field="root",
            value=root.tag[:80],
        )
    sequence_set = root.find(f"{V3}component/{V3}series/{V3}component/{V3}sequenceSet")
    if sequence_set is None:
        raise refuse("the aECG holds no series with a sequence set", rule="aecg_sequence_set")
    rate: float | None = None
    leads: list[str] = []
    samples: list[tuple[int, ...]] = []
    for sequence in sequence_set.iterfind(f"{V3}component/{V3}sequence"):
        code = _attribute(sequence.find(f"{V3}code"), "code")
        value = sequence.find(f"{V3}value")
        if value is None or code is None:
            raise refuse("an aECG sequence lacks its code or value", rule="aecg_sequence")
        kind = value.get(XSI_TYPE, "").split(":")[-1]
        if kind == "GLIST_TS" or code.startswith("TIME_"):
            rate = _rate(value)
        elif kind == "SLIST_PQ":
            leads.append(lead_name(code))
            samples.append(_lead_samples(value, leads[-1]))
    if rate is None:
        raise refuse(
            "the aECG has no time sequence (GLIST_TS) giving its sampling increment", rule="aecg_time_sequence"
        )
    acquired = _first_time(root)
    patient = _patient(root)
    return check_tracing(Tracing("aecg", _document_id(root), tuple(leads), rate, tuple(samples), acquired, patient))


def parse_xml(data: bytes) -> ET.Element:
    """The document's tree; a declared DTD or entity, or XML that does not parse, is refused."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse_declaration(*_: object) -> NoReturn:
        raise refuse(
            "the XML declares a document type or entities, which are refused (entity expansion and "
            "external references are attacks on the parser)",
            rule="xml_no_dtd",
        )

    parser.StartDoctypeDeclHandler = refuse_declaration
    parser.EntityDeclHandler = refuse_declaration
    parser.ExternalEntityRefHandler = refuse_declaration
    parser.StartElementHandler = lambda name, attrs: builder.start(
        _qualified(name), {_qualified(key): value for key, value in attrs.items()}
    )
    parser.EndElementHandler = lambda name: builder.end(_qualified(name))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise refuse(
            f"the file is not well-formed XML: {expat.errors.messages[exc.code]} at line {exc.lineno}, "
            f"column {exc.offset}",
            rule="xml_well_formed",
        ) from None
    except LookupError as exc:  # the declaration names an encoding Python does not know (expat asks the codecs)
        raise refuse(f"the XML declares an encoding that is not known: {exc}", rule="xml_encoding") from None
    return builder.close()


def _qualified(name: str) -> str:
    return "{" + name if "}" in name else name


def _attribute(element: ET.Element | None, name: str) -> str | None:
    return None if element is None else element.get(name)


def _rate(value: ET.Element) -> float:
    increment = value.find(f"{V3}increment")
    try:
        step = float(_attribute(increment, "value") or "")
    except ValueError:
        raise refuse(
            "the time sequence's increment is not a number",
            rule="aecg_increment",
            field="increment",
            value=_attribute(increment, "value"),
        ) from None
    unit = _attribute(increment, "unit") or "s"
    if unit not in _TO_SECONDS or step <= 0:
        raise refuse(
            "the time sequence's increment must be a positive number of s or ms",
            rule="aecg_increment",
            field="increment",
            value=f"{step} {unit}",
        )
    return 1.0 / (step * _TO_SECONDS[unit])


def _lead_samples(value: ET.Element, lead: str) -> tuple[int, ...]:
    origin, origin_unit = _quantity(value.find(f"{V3}origin"), lead, "origin")
    scale, scale_unit = _quantity(value.find(f"{V3}scale"), lead, "scale")
    digits = value.find(f"{V3}digits")
    try:
        numbers = [int(word) for word in (digits.text if digits is not None and digits.text else "").split()]
    except ValueError:
        raise refuse(f"lead {lead}'s digits are not whole numbers", rule="aecg_digits", field=lead) from None
    return tuple(
        round(origin * _TO_MICROVOLTS[origin_unit] + number * scale * _TO_MICROVOLTS[scale_unit]) for number in numbers
    )


def _quantity(element: ET.Element | None, lead: str, name: str) -> tuple[float, str]:
    text, unit = _attribute(element, "value"), _attribute(element, "unit") or "uV"
    try:
        number = float(text or "")
    except ValueError:
        raise refuse(
            f"lead {lead}'s {name} is not a number", rule="aecg_scale", field=lead, value=(text or "")[:32]
        ) from None
    if unit not in _TO_MICROVOLTS:
        raise refuse(f"lead {lead}'s {name} must be in uV, mV or V", rule="aecg_unit", field=lead, value=unit[:16])
    return number, unit


def _first_time(root: ET.Element) -> datetime | None:
    for path in (f"{V3}effectiveTime/{V3}low", f"{V3}component/{V3}series/{V3}effectiveTime/{V3}low"):
        text = _attribute(root.find(path), "value")
        if text:
            return parse_timestamp(text, field="effectiveTime")
    return None


def _document_id(root: ET.Element) -> str | None:
    element = root.find(f"{V3}id")
    if element is None:
        return None
    root_id, extension = element.get("root"), element.get("extension")
    return ":".join(part for part in (root_id, extension) if part) or None


def _patient(root: ET.Element) -> Patient:
    subject = root.find(
        f"{V3}componentOf/{V3}timepointEvent/{V3}componentOf/{V3}subjectAssignment/{V3}subject/{V3}trialSubject"
    )
    if subject is None:
        return Patient(None, None)
    identifier = _attribute(subject.find(f"{V3}id"), "extension")
    name_element = subject.find(f"{V3}subjectDemographicPerson/{V3}name")
    name = " ".join(" ".join(name_element.itertext()).split()) if name_element is not None else ""
    return Patient(identifier or None, name or None)
