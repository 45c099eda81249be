"""A TCP stand-in for a server's address that can go down and come back: a restart of
PostgreSQL as its clients see it (every connection cut, new ones refused, then answered again),
without restarting the PostgreSQL that other tests share."""

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from servers import free_port


class Proxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`, on an event loop of its own thread."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        self._thread.start()
        self.up()

    def up(self) -> None:
        """Listen again: new connections reach the target."""
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def down(self) -> None:
        """Refuse new connections and cut every open one, as a server that stops does."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for stream in list(self._streams):
            stream.transport.abort()  # a reset, not a polite close: the server is gone
        self._streams.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target
            )
        except OSError:
            writer.transport.abort()
            return
        self._streams |= {writer, upstream_writer}
        await asyncio.gather(
            self._pump(reader, upstream_writer), self._pump(upstream_reader, writer)
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with suppress(OSError):
            writer.close()
        self._streams.discard(writer)


@contextmanager
def proxy_to(target: int) -> Iterator[Proxy]:
    proxy = Proxy(target)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
