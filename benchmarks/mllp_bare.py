"""The bare MLLP ceiling: a plain asyncio protocol that frames each block and answers a fixed ACK at once.

No parsing, no database, no group commit: what the loopback, the event loop and the load generator cost per
message on this machine, measured in the same run as the listener (benchmarks/telemed.py). Run as
`python benchmarks/mllp_bare.py PORT PROCESSES`: that many processes share the port (SO_REUSEPORT), as the
listener's do, each on uvloop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys

START, END = b"\x0b", b"\x1c\x0d"
ACK = START + b"MSH|^~\\&|CITYHEALTH||LIS||20261205083000||ACK^R01^ACK|1|P|2.5.1\rMSA|AA|1\r" + END


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        blocks = self.buffer.count(END)
        if blocks:
            self.buffer = self.buffer[self.buffer.rindex(END) + len(END) :]
            self.transport.write(ACK * blocks)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", port, reuse_port=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print("bare MLLP listening", flush=True)
    await stop.wait()
    server.close()


def serve(port: int) -> None:
    import uvloop

    uvloop.run(_serve(port))


def main() -> None:
    port, processes = int(sys.argv[1]), int(sys.argv[2])
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=serve, args=(port,)) for _ in range(processes)]
    for child in children:
        child.start()
    signal.signal(signal.SIGTERM, lambda *_: None)  # the process group's SIGTERM reaches the children too
    for child in children:
        child.join()


if __name__ == "__main__":
    main()
