"""The simulated lab systems' messages, read back by the platform's own parser: one report per result, the
sender's registry code where the statistics credit it, a routed specimen's steps in order."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.simulation.actors import SimulationError
from cityhealth.simulation.lab_feed import LabFeed, LabSystem, result, specimen_step
from cityhealth.telemed.lab_parse import parse

DAY = date(2022, 6, 3)
AT = datetime(2022, 6, 3, 12, tzinfo=BUSINESS_TZ)


def test_a_result_is_one_report_credited_to_the_senders_code() -> None:
    system = LabSystem("ORG0042")
    message = parse(result(system, DAY, AT, 7, specimen="S1"))
    assert message.header.sending_facility == "ORG0042"
    assert message.header.message_type.startswith("ORU^R01")
    assert len(message.orders) == 1
    assert message.orders[0].observations
    assert [(step.specimen_no, step.step) for step in message.steps] == [("S1", "reported")]
    assert len(message.patient_ids) == 1


def test_each_message_has_a_control_id_of_its_own() -> None:
    system = LabSystem("ORG0042")
    ids = {parse(result(system, DAY, AT, serial)).header.control_id for serial in range(50)}
    assert len(ids) == 50


def test_a_routed_specimen_is_collected_shipped_and_received() -> None:
    system = LabSystem("ORG0042")
    steps = [parse(specimen_step(system, DAY, AT, "S9", step)).steps for step in ("collected", "shipped", "received")]
    assert [[(s.specimen_no, s.step) for s in found] for found in steps] == [
        [("S9", "collected")], [("S9", "shipped")], [("S9", "received")]]


async def test_a_day_of_a_lab_system_is_acknowledged_message_by_message(settings: Settings, database: Database) -> None:
    clock = SimulatedClock(AT)
    async with LabFeed(database, settings, clock) as feed:
        messages = feed.day_messages("ORG0042", DAY, reports=5, routed=2)
        assert len(messages) == 2 * 3 + 5
        await feed.send("ORG0042", messages)
        again = feed.day_messages("ORG0042", DAY, reports=1, routed=0)
        await feed.send("ORG0042", again)  # the same connection, kept for the month
    assert feed.messages == 12
    assert feed.listener.stats.accepted == 12


async def test_a_refused_message_stops_the_month_naming_the_ack_and_every_connection_is_closed(
        settings: Settings, database: Database) -> None:
    clock = SimulatedClock(AT)
    feed = LabFeed(database, settings, clock)
    with pytest.raises(SimulationError) as refused:
        async with feed:
            await feed.send("ORG0042", [b"MSH|^~\\&|LIS||CITYHEALTH|LAB|20220603120000||ADT^A01|X1|P|2.5.1\r"])
    assert refused.value.code == "simulation_lab_refused"
    assert "ORG0042" in refused.value.message
    writer = feed.systems["ORG0042"].writer
    assert writer is not None
    assert writer.is_closing()
