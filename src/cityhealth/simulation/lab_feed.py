"""The lab systems of the month: HL7 v2 results (ORU^R01) and specimen steps (OML^O21), built with python-hl7
and sent over MLLP to the platform's lab listener, each message awaiting its acknowledgement.

The listener is the platform's own (`telemed.mllp.LabListener`, what `cityhealth telemed mllp` runs), started
by the simulator on a free loopback port with the run's database and simulated clock: a message is placed in
the month by the time the listener receives it, and only the run's clock says what that time is. A separate
`telemed mllp` process would stamp wall-clock times, so a simulated month cannot send to one; the same
listener in the run's process behaves alike on SQLite and PostgreSQL (one database handle, no second writer
on the SQLite file). The lab systems reach it over a real TCP socket, as they would in production.

Each lab system is one MLLP connection, kept for the month; a day's messages go one after another on it,
every one waiting for its ACK (AA, or the month stops naming the ACK's text), the lab systems side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Self

import hl7
from hl7.mllp import HL7StreamReader, HL7StreamWriter, open_hl7_connection

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import Sex, make_resident_id
from cityhealth.registry.protection import cipher_for
from cityhealth.simulation.actors import SimulationError
from cityhealth.telemed.mllp import RECEIVER, LabListener

ACK_TIMEOUT_S = 60.0  # wall-clock seconds for one acknowledgement (the listener commits before it answers)
OBSERVATIONS = (
    ("NM", ("GLU", "葡萄糖", "LN"), "5.4", "mmol/L", "3.9-6.1", "N"),
    ("NM", ("HGB", "血红蛋白", "LN"), "128", "g/L", "115-150", "N"),
    ("NM", ("WBC", "白细胞计数", "LN"), "6.2", "10*9/L", "3.5-9.5", "N"),
)
# A field's value: a string, a tuple of components, or a list of repetitions.
Value = str | tuple[str, ...] | list[str | tuple[str, ...]]


def _hl7_time(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S")


def field(value: Value) -> hl7.Field:
    """A python-hl7 field of a string, a tuple of components, or a list of repetitions (python-hl7 parses
    messages but has no builder: the lab systems' messages here, the tests' and the benchmark's are made with
    this)."""
    repeats = value if isinstance(value, list) else [value]
    return hl7.Field(sequence=[hl7.Repetition(sequence=list(r) if isinstance(r, tuple) else [r]) for r in repeats])


def segment(name: str, *fields: Value) -> hl7.Segment:
    return hl7.Segment(sequence=[hl7.Field(sequence=[name]), *(field(value) for value in fields)])


def _header(facility: str, control_id: str, message_type: tuple[str, ...], at: datetime) -> hl7.Segment:
    values: tuple[Value, ...] = ("LIS", facility, RECEIVER, "LAB", _hl7_time(at), "",
                                 message_type, control_id, "P", "2.5.1")
    return hl7.Segment(sequence=[hl7.Field(sequence=["MSH"]), hl7.Field(sequence=["|"]),
                                 hl7.Field(sequence=["^~\\&"]), *(field(value) for value in values)])


def _wire(message: hl7.Message) -> bytes:
    return str(message).encode("utf-8")


@dataclass
class LabSystem:
    """One organization's lab system: its registry code in MSH-4, its connection, its counters."""

    code: str
    sent: int = 0
    reader: HL7StreamReader | None = None
    writer: HL7StreamWriter | None = None
    specimens: int = 0

    def next_id(self, day: date) -> str:
        self.sent += 1
        return f"{self.code}-{day:%Y%m%d}-{self.sent:07d}"[:50]


def patient_id(serial: int) -> str:
    """A patient's resident ID number for the message (synthetic; most are not in the master index)."""
    birth = date(1940 + serial % 70, 1 + serial % 12, 1 + serial % 28)
    return make_resident_id("320115", birth, (serial * 2 + 1) % 1000, Sex.MALE)


def result(system: LabSystem, day: date, at: datetime, serial: int, specimen: str | None = None) -> bytes:
    """An ORU^R01: one OBR (one report) with its OBX, and the specimen's SPM when it was routed."""
    control = system.next_id(day)
    observed = _hl7_time(at)
    segments = [
        _header(system.code, control, ("ORU", "R01", "ORU_R01"), at),
        segment("PID", "1", "", (patient_id(serial), "", "", "", "ID")),
        segment("OBR", "1", f"P-{control}", f"F-{control}", ("CBC", "血常规", "L"), "", "", observed),
    ]
    if specimen is not None:
        segments.append(segment("SPM", "1", (specimen,), "", ("BLD", "全血")))
    rows = OBSERVATIONS[: 1 + serial % len(OBSERVATIONS)]
    segments += [segment("OBX", str(n), kind, code, "", value, unit, ranges, flag, "", "", "F", "", "", observed)
                 for n, (kind, code, value, unit, ranges, flag) in enumerate(rows, 1)]
    return _wire(hl7.Message(sequence=segments))


def specimen_step(system: LabSystem, day: date, at: datetime, specimen: str, step: str) -> bytes:
    """An OML^O21 reporting a specimen's step: collected (ORC NW), shipped (ORC SC/IP), received (SPM-18)."""
    control = system.next_id(day)
    order = {"collected": ("NW", ""), "shipped": ("SC", "IP"), "received": ("SC", "IP")}[step]
    spm: list[Value] = ["1", (specimen,), "", ("BLD", "全血"), *([""] * 14)]
    if step == "received":
        spm[17] = _hl7_time(at)
    return _wire(hl7.Message(sequence=[
        _header(system.code, control, ("OML", "O21", "OML_O21"), at),
        segment("PID", "1", "", (patient_id(system.specimens), "", "", "", "ID")),
        segment("ORC", order[0], f"P-{specimen}", "", "", order[1]),
        segment("OBR", "1", f"P-{specimen}", "", ("CBC", "血常规", "L")),
        segment("SPM", *spm),
    ]))


class LabFeed:
    """The platform's listener and the month's lab systems; leaving the block closes every connection and
    stops the listener, however the month ends."""

    def __init__(self, database: Database, settings: Settings, clock: Clock) -> None:
        self.listener = LabListener(database, clock, cipher_for(settings))
        self.clock = clock
        self.port = 0
        self.systems: dict[str, LabSystem] = {}
        self.messages = 0
        self._serial = 0

    async def __aenter__(self) -> Self:
        _, self.port = await self.listener.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        try:
            for system in self.systems.values():
                if system.writer is not None:
                    system.writer.close()
                    with contextlib.suppress(OSError, TimeoutError):  # the connection is gone either way
                        await asyncio.wait_for(system.writer.wait_closed(), ACK_TIMEOUT_S)
        finally:
            await self.listener.close()

    async def _connected(self, code: str) -> tuple[HL7StreamReader, HL7StreamWriter]:
        """The lab system's connection, opened on its first message and kept for the month."""
        system = self.systems.setdefault(code, LabSystem(code))
        if system.reader is not None and system.writer is not None:
            return system.reader, system.writer
        try:
            reader, writer = await asyncio.wait_for(open_hl7_connection("127.0.0.1", self.port), ACK_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise SimulationError(f"lab system {code}: cannot reach the MLLP listener on port {self.port}: "
                                  f"{type(exc).__name__}") from exc
        system.reader, system.writer = reader, writer
        return reader, writer

    def day_messages(self, code: str, day: date, reports: int, routed: int) -> list[bytes]:
        """A lab system's messages of a day: each routed specimen collected, shipped and received, then the
        day's results, the first ones reporting the routed specimens."""
        system = self.systems.setdefault(code, LabSystem(code))
        at = self.clock.now()
        messages: list[bytes] = []
        specimens: list[str] = []
        for _ in range(routed):
            system.specimens += 1
            specimen = f"S{day:%Y%m%d}{system.specimens:06d}"
            specimens.append(specimen)
            messages += [specimen_step(system, day, at, specimen, step) for step in ("collected", "shipped",
                                                                                     "received")]
        for index in range(reports):
            self._serial += 1
            messages.append(result(system, day, at, self._serial, specimens[index] if index < len(specimens)
                                   else None))
        return messages

    async def send(self, code: str, messages: list[bytes]) -> None:
        """Each message in turn on the lab system's connection, each acknowledged AA before the next."""
        reader, writer = await self._connected(code)
        for raw in messages:
            try:
                writer.writeblock(raw)
                await writer.drain()
                ack = await asyncio.wait_for(reader.readmessage(), ACK_TIMEOUT_S)
            except TimeoutError:
                raise SimulationError(f"lab system {code}: no ACK within {ACK_TIMEOUT_S:g} s",
                                      code="simulation_timeout") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise SimulationError(f"lab system {code}: the MLLP connection failed: {type(exc).__name__}") from exc
            msa = ack.segment("MSA")
            if str(msa(1)) != "AA":
                text = ack.unescape(str(msa(3))) if len(msa) > 3 else ""
                raise SimulationError(f"lab system {code}: message answered {msa(1)}: {text}",
                                      code="simulation_lab_refused")
            self.messages += 1
