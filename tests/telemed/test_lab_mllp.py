"""The MLLP listener, over a real socket: results stored and acknowledged, bad input answered and kept."""

from __future__ import annotations

import asyncio
import logging

import hl7
import hl7.util
import pytest

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from cityhealth.telemed import lab_service
from tests.factories.booking import add_resident
from tests.telemed.lab_support import ack_code, ack_text, oru, running_listener, send, wire

pytestmark = pytest.mark.asyncio


async def _kept(database: Database, control_id: str | None = None) -> list[lab_service.LabMessage]:
    async with database.transaction() as session:
        return await lab_service.kept_messages(session, control_id=control_id)


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"], ids=["CR", "LF", "CRLF"])
async def test_a_result_is_stored_linked_to_the_resident_and_acknowledged(
    database: Database, settings: Settings, clock: SimulatedClock, ending: str
) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 3)
    async with running_listener(database, settings, clock) as (_, port):
        [ack] = await send(port, wire(oru("R-1", [("MR-77", "", "", "", "MR"), (number, "", "", "", "ID")]), ending))
    assert ack_code(ack) == "AA", ack_text(ack)
    assert str(ack.segment("MSA")(2)) == "R-1"
    [kept] = await _kept(database)
    async with database.transaction() as session:
        [(report, observations)] = await lab_service.reports_of(session, [kept.id])
    assert (report.resident_id, report.unmatched_reason, report.test_code) == (resident_id, None, "CBC")
    assert [(o.code, o.name, o.value, o.units, o.reference_range, o.abnormal_flag) for o in observations] == [
        ("GLU", "葡萄糖", "5.4", "mmol/L", "3.9-6.1", "N"),
        ("HGB", "血红蛋白", "98", "g/L", "115-150", "L"),
    ]
    # The raw message is kept as it came, encrypted: the ID number is not in the row's text.
    assert number not in kept.raw_cipher
    assert lab_service.raw_message(cipher_for(settings), kept) == wire(
        oru("R-1", [("MR-77", "", "", "", "MR"), (number, "", "", "", "ID")]), ending
    )


async def test_a_repeated_control_id_is_acknowledged_and_stored_once(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    _, number = await add_resident(database, settings, clock.now(), 4)
    message = wire(oru("R-2", [(number, "", "", "", "ID")]))
    async with running_listener(database, settings, clock) as (_, port):
        first = await send(port, message, message)
        # The same message again from two connections at once (a sender's retry racing its first try).
        racing = await asyncio.gather(send(port, message), send(port, message))
    assert [ack_code(a) for a in [*first, *(r[0] for r in racing)]] == ["AA"] * 4
    assert "duplicate" in ack_text(first[1])
    kept = await _kept(database, "R-2")
    assert len(kept) == 1
    async with database.transaction() as session:
        assert len(await lab_service.reports_of(session, [kept[0].id])) == 1


async def test_the_same_control_id_from_another_sender_is_another_message(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(port, wire(oru("R-3", [])), wire(oru("R-3", [], facility="XUANWU-LAB")))
    assert [ack_code(a) for a in acks] == ["AA", "AA"]
    assert len(await _kept(database, "R-3")) == 2


@pytest.mark.parametrize(
    ("raw", "code", "named"),
    [
        (b"this is not HL7 at all", "AR", "MSH segment expected"),
        (wire(oru("R-4", [])).replace(b"|R-4|", b"||"), "AR", "MSH-10"),
        (wire(oru("R-5", [])).replace(b"ORU^R01^ORU_R01", b"ADT^A01"), "AR", "ADT^A01"),
        (wire(oru("R-6", [], observations=[("NM", ("GLU", "葡萄糖"), "", "five", "mmol/L")])), "AE", "OBX[1]-5"),
        (wire(oru("R-7", [], observations=[("NM", "", "", "5.1")])), "AE", "OBX[1]-3"),
        (wire(oru("R-8", [])).replace(b"20261205080000", b"2026-12-05"), "AE", "OBR[1]-7"),
        (wire(oru("R-9", [])).replace(b"\rOBR|", b"\rXXX|"), "AE", "OBX before any OBR"),
    ],
    ids=[
        "not-hl7",
        "no-control-id",
        "unsupported-type",
        "nm-not-a-number",
        "no-observation-code",
        "bad-time",
        "obx-without-obr",
    ],
)
async def test_malformed_hl7_gets_a_negative_ack_naming_the_problem_and_is_kept(
    database: Database, settings: Settings, clock: SimulatedClock, raw: bytes, code: str, named: str
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        [ack] = await send(port, raw)
    assert ack_code(ack) == code
    assert named in ack_text(ack)
    [kept] = await _kept(database)
    assert (kept.ack_code, lab_service.raw_message(cipher_for(settings), kept)) == (code, raw)
    assert named in f"{kept.error_location}: {kept.error_text}"
    async with database.transaction() as session:
        assert await lab_service.reports_of(session, [kept.id]) == []


async def test_a_corrected_resend_under_a_refused_control_id_is_accepted(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    bad = wire(oru("R-10", [], observations=[("NM", ("GLU", "葡萄糖"), "", "five")]))
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(port, bad, wire(oru("R-10", [])), wire(oru("R-10", [])))
    assert [ack_code(a) for a in acks] == ["AE", "AA", "AA"]
    assert sorted(m.ack_code for m in await _kept(database, "R-10")) == ["AA", "AE"]


@pytest.mark.parametrize(
    ("ids", "reason"),
    [
        ([], "no_identifier"),
        ([("12345", "", "", "", "ID")], "invalid_identifier"),
        ([("110101199003074514", "", "", "", "ID")], "not_in_index"),
    ],
)
async def test_an_unmatched_patient_is_kept_and_flagged(
    database: Database, settings: Settings, clock: SimulatedClock, ids: list[tuple[str, ...]], reason: str
) -> None:
    async with running_listener(database, settings, clock) as (_, port):
        [ack] = await send(port, wire(oru("R-11", ids)))
    assert ack_code(ack) == "AA"
    [kept] = await _kept(database)
    async with database.transaction() as session:
        [(report, observations)] = await lab_service.reports_of(session, [kept.id])
    assert (report.resident_id, report.unmatched_reason, len(observations)) == (None, reason, 2)
    assert (report.patient_hash is not None) is (reason == "not_in_index")


async def test_personal_data_stays_out_of_logs_and_acks(
    database: Database, settings: Settings, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, number = await add_resident(database, settings, clock.now(), 5)
    caplog.set_level(logging.DEBUG)
    # What any logging.config call with disable_existing_loggers=False (uvicorn's, in another test of the same
    # process) does to every logger: the silencing must survive it.
    hl7.util.logger.disabled = False
    async with running_listener(database, settings, clock) as (_, port):
        acks = await send(
            port,
            wire(oru("R-12", [(number, "", "", "", "ID")])),
            wire(oru("R-13", [(number, "", "", "", "ID")], observations=[("NM", "", "", "1")])),
            wire(oru("R-14", [(number, "", "", "", "ID")])).replace(b"\rOBX|1", b"\rZXX|1\rOBX|1"),
            # Escape sequences python-hl7 cannot decode, which it logs with the whole field's value.
            wire(oru("R-15", [(number + "\\Q\\", "", "", "", "ID"), (number + "\\C2842\\",)])),
        )
    assert [ack_code(a) for a in acks] == ["AA", "AE", "AA", "AA"]
    assert any(record.name == "cityhealth.telemed.mllp" for record in caplog.records)  # the refusal was logged
    for text in [caplog.text, *(str(record.__dict__) for record in caplog.records), *(str(a) for a in acks)]:
        assert number not in text
        assert "张" not in text


async def test_a_block_without_its_start_character_is_refused_and_kept(
    database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    raw = wire(oru("R-16", []))
    async with running_listener(database, settings, clock) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw + b"\x1c\r")  # no <VT> before the message
        ack = hl7.parse((await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10))[1:-2].decode())
        writer.close()
    assert ack_code(ack) == "AR"
    assert "<VT>" in ack_text(ack)
    assert str(ack.segment("MSA")(2)) == "R-16"  # the header was still read for the answer
    [kept] = await _kept(database)
    assert (kept.ack_code, lab_service.raw_message(cipher_for(settings), kept)) == ("AR", raw)
