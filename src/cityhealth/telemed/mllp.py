"""The MLLP listener lab systems send their HL7 v2 messages to, on python-hl7's asyncio streams.

Each connection is read block by block (<VT> message <FS><CR>); every message gets one acknowledgement on
the same connection, in order. The messages of all connections are decided together by a group commit
(db/group_commit.py): one transaction per batch, so the cost of a commit is shared by the more messages the
more there are; a batch that fails is decided again message by message, so a failure answers only its own
message. The acknowledgement is sent after the batch has committed: an AA means the message is stored.

Logs name the sender, the control id, the acknowledgement code and where a problem lies: never a field of the
message's content (the patient is in it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass

from hl7.mllp import start_hl7_server

from cityhealth.clock import Clock
from cityhealth.db.driver import INTEGRITY_ERRORS
from cityhealth.db.engine import Database
from cityhealth.db.group_commit import Batch, GroupCommit, group_transaction
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher
from cityhealth.telemed import lab_service
from cityhealth.telemed.lab_parse import APPLICATION_ERROR, SEGMENT_SEQUENCE, Header, Hl7Problem
from cityhealth.telemed.lab_service import Outcome, Received

logger = logging.getLogger(__name__)

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
RECEIVER = "CITYHEALTH"
_LOCATION = re.compile(r"^([A-Z0-9]{3})(?:\[(\d+)\])?(?:-(\d+))?$")
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))


def _escaped(text: str) -> str:
    for plain, escaped in _ESCAPES:
        text = text.replace(plain, escaped)
    return text.replace("\r", " ").replace("\n", " ")


def acknowledgement(outcome: Outcome, clock: Clock) -> bytes:
    """The ACK of a message: MSA with the code and the message's control id, ERR naming the problem."""
    header = outcome.header or Header("", "", "", "", "", "", "", "")
    trigger = header.message_type.split("^")[1] if "^" in header.message_type else ""
    names = [
        header.receiving_application or RECEIVER,
        header.receiving_facility,
        header.sending_application,
        header.sending_facility,
    ]
    msh = [
        "MSH",
        "^~\\&",
        *(_escaped(name) for name in names),
        clock.now().strftime("%Y%m%d%H%M%S%z"),
        "",
        f"ACK^{_escaped(trigger)}^ACK" if trigger else "ACK",
        uuid.uuid4().hex[:20],
        _escaped(header.processing_id or "P"),
        _escaped(header.version or "2.5"),
    ]
    problem = outcome.problem
    text = (
        f"{problem.location}: {problem.text}"
        if problem
        else ("duplicate: already received" if outcome.duplicate else "")
    )
    msa = ["MSA", outcome.ack, _escaped(header.control_id), _escaped(text[:80])]
    segments = ["|".join(msh), "|".join(msa).rstrip("|")]
    if problem is not None:
        location = _error_location(problem.location)
        segments.append(
            "|".join(
                [
                    "ERR",
                    "",
                    location,
                    f"{problem.code}^{_escaped(problem.text)}^HL70357",
                    "E",
                    "",
                    "",
                    "",
                    _escaped(f"{problem.location}: {problem.text}"),
                ]
            )
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


def _error_location(location: str) -> str:
    """ERR-2 (segment^sequence^field) of a problem's location such as "OBX[2]-5"; empty when it is no segment's."""
    found = _LOCATION.match(location)
    if found is None:
        return ""
    name, sequence, number = found.groups()
    return "^".join([name, sequence or "1", number or ""]).rstrip("^")


@dataclass
class ListenerStats:
    received: int = 0
    accepted: int = 0
    refused: int = 0


class LabListener:
    """The listener: `start()` binds it, `close()` stops taking connections and lets the batches finish."""

    def __init__(
        self, database: Database, clock: Clock, cipher: FieldCipher, *, max_batch: int = 256,
        batch_interval_s: float = 0.0,
    ) -> None:
        self.database = database
        self.clock = clock
        self.cipher = cipher
        self.senders = registry.OrganizationIds(clock)
        self.group: GroupCommit[Received, Outcome] = GroupCommit(
            max_items=max_batch, min_interval_s=batch_interval_s
        )
        self.stats = ListenerStats()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 2575, *, reuse_port: bool = False) -> tuple[str, int]:
        """Listen on `host`:`port` (0: any free port; `reuse_port`: sharing it with other processes, the
        kernel spreading the connections over them); returns the address bound."""
        self._server = await start_hl7_server(
            self._connected, host, port, limit=MAX_MESSAGE_BYTES, reuse_port=reuse_port
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("the listener is not started: start() first")
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self.group.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    block = await reader.readuntil(END_BLOCK)
                except asyncio.IncompleteReadError:
                    return  # the sender closed the connection (a partial block is no message)
                except asyncio.LimitOverrunError:
                    logger.warning("MLLP block over %d bytes: connection closed", MAX_MESSAGE_BYTES)
                    return
                outcome = await self.decide(self._framed(block[: -len(END_BLOCK)]))
                writer.write(START_BLOCK + acknowledgement(outcome, self.clock) + END_BLOCK)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    def _framed(self, block: bytes) -> Received:
        start = block.find(START_BLOCK)
        if start < 0:  # kept all the same: what a sender sent is never lost
            received = lab_service.receive(block, self.clock)
            problem = Hl7Problem(
                "AR", SEGMENT_SEQUENCE, "MLLP", "the block does not begin with <VT> (0x0B)", received.header
            )
            return Received(block, received.received_at, None, problem)
        return lab_service.receive(block[start + 1 :], self.clock)

    async def decide(self, received: Received) -> Outcome:
        """The message's outcome once its batch has committed (AE when it could not be stored)."""
        self.stats.received += 1
        try:
            outcome = await self.group.submit("lab", received, self._decide_batch)
        except Exception as error:  # ShutDown, or the database failing: the sender sends again
            header = received.header
            logger.warning(
                "lab message not stored (%s)",
                type(error).__name__,
                extra={"control_id": header.control_id if header else None},
            )
            problem = Hl7Problem(
                "AE", APPLICATION_ERROR, "MSH-10", "the message could not be stored; send it again", header
            )
            return Outcome("AE", header, problem)
        if outcome.ack == "AA":
            self.stats.accepted += 1
        else:
            self.stats.refused += 1
            header = outcome.header
            logger.info(
                "lab message refused",
                extra={
                    "ack_code": outcome.ack,
                    "error_code": outcome.problem.code if outcome.problem else None,
                    "error_location": outcome.problem.location if outcome.problem else None,
                    "sending_facility": header.sending_facility if header else None,
                    "control_id": header.control_id if header else None,
                },
            )
        return outcome

    async def _decide_batch(self, batch: Batch[Received, Outcome]) -> list[Outcome]:
        items = batch.take()
        try:
            return await self._ingest(items)
        except INTEGRITY_ERRORS:
            # Another listener process stored one of these messages (or specimens) between this batch's reading
            # and its insert: PostgreSQL made the insert wait for that transaction, so it has committed now and
            # the batch decided again finds the message accepted (AA, a duplicate) instead of answering AE.
            return await self._ingest(items)

    async def _ingest(self, items: list[Received]) -> list[Outcome]:
        async with group_transaction(self.database, begin=True) as session:
            return await lab_service.ingest(session, self.clock, self.cipher, items, self.senders)
