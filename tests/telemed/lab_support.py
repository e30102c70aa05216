"""Lab messages built with python-hl7, and a client that sends them over MLLP to a listener started in the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import hl7
from hl7.mllp import open_hl7_connection

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from cityhealth.simulation.lab_feed import Value, field, segment
from cityhealth.telemed.mllp import LabListener


def header(
    control_id: str, message_type: tuple[str, ...], *, application: str = "LIS", facility: str = "GULOU-LAB"
) -> hl7.Segment:
    return hl7.Segment(
        sequence=[
            hl7.Field(sequence=["MSH"]),
            hl7.Field(sequence=["|"]),
            hl7.Field(sequence=["^~\\&"]),
            *(
                field(value)
                for value in (
                    application,
                    facility,
                    "CITYHEALTH",
                    "NANJING",
                    "20261205083000",
                    "",
                    message_type,
                    control_id,
                    "P",
                    "2.5.1",
                )
            ),
        ]
    )


def oru(
    control_id: str,
    patient_ids: Sequence[tuple[str, ...]],
    *,
    specimen: str | None = None,
    observations: Sequence[tuple[Value, ...]] | None = None,
    **sender: Any,
) -> hl7.Message:
    """An ORU^R01: one OBR (a blood glucose and a haemoglobin by default) with its OBX."""
    rows = (
        observations
        if observations is not None
        else [
            ("NM", ("GLU", "葡萄糖", "LN"), "", "5.4", "mmol/L", "3.9-6.1", "N", "", "", "F"),
            ("NM", ("HGB", "血红蛋白", "LN"), "", "98", "g/L", "115-150", "L", "", "", "F"),
        ]
    )
    segments = [
        header(control_id, ("ORU", "R01", "ORU_R01"), **sender),
        segment("PID", "1", "", list(patient_ids), "", ("张", "三")),
        segment("OBR", "1", "P-" + control_id, "F-" + control_id, ("CBC", "血常规", "L"), "", "", "20261205080000"),
    ]
    if specimen is not None:
        segments.append(segment("SPM", "1", (specimen,), "", ("BLD", "全血")))
    segments += [segment("OBX", str(n), *row) for n, row in enumerate(rows, 1)]
    return hl7.Message(sequence=segments)


def oml(control_id: str, specimen: str, step: str, *, reason: str | None = None, **sender: Any) -> hl7.Message:
    """An OML^O21 reporting a specimen step: collected (ORC NW), shipped (ORC SC/IP), received (SPM-18),
    rejected (SPM-21)."""
    control = {"collected": ("NW", ""), "shipped": ("SC", "IP")}.get(step, ("SC", "IP"))
    spm: list[Value] = ["1", (specimen,), "", ("BLD", "全血")] + [""] * 14
    if step == "received":
        spm[17] = "20261205100000"
    if step == "rejected":
        spm += ["", "", ("HEM", reason or "溶血")]
    return hl7.Message(
        sequence=[
            header(control_id, ("OML", "O21", "OML_O21"), **sender),
            segment("PID", "1", "", [("110101199003074514", "", "", "", "ID")]),
            segment("ORC", control[0], "P-" + specimen, "", "", control[1]),
            segment("OBR", "1", "P-" + specimen, "", ("CBC", "血常规", "L")),
            segment("SPM", *spm),
        ]
    )


def wire(message: hl7.Message | str, ending: str = "\r") -> bytes:
    """The message's bytes with its segments ended by `ending` (CR, LF or CRLF)."""
    return str(message).replace("\r", "\n").replace("\n", ending).encode("utf-8")


@asynccontextmanager
async def running_listener(
    database: Database, settings: Settings, clock: Clock, **options: Any
) -> AsyncIterator[tuple[LabListener, int]]:
    listener = LabListener(database, clock, cipher_for(settings), **options)
    _, port = await listener.start("127.0.0.1", 0)
    try:
        yield listener, port
    finally:
        await listener.close()


async def send(port: int, *messages: bytes) -> list[hl7.Message]:
    """Send each message over one MLLP connection and read its acknowledgement before the next."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    try:
        acks = []
        for raw in messages:
            writer.writeblock(raw)
            await writer.drain()
            acks.append(await asyncio.wait_for(reader.readmessage(), 10))
        return acks
    finally:
        writer.close()
        await writer.wait_closed()


def ack_code(ack: hl7.Message) -> str:
    return str(ack.segment("MSA")(1))


def ack_text(ack: hl7.Message) -> str:
    """MSA-3 and ERR, unescaped, as one text."""
    parts = [ack.unescape(str(ack.segment("MSA")(3))) if len(ack.segment("MSA")) > 3 else ""]
    parts += [ack.unescape(str(err)) for err in ack.segments("ERR")] if any(str(s[0]) == "ERR" for s in ack) else []
    return " | ".join(parts)
