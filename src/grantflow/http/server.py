"""The HTTP/1.1 connection as `grantflow serve` runs it: uvicorn's httptools protocol with limits it lacks.

httptools has no limit on the size or number of request headers and uvicorn no timeout for a request that is
sent slowly, so a stranger could hold memory (a 200 MiB header) or connections (thousands of half-sent requests).
Here a request head larger than `http_max_header_bytes` or with more than `http_max_headers` fields is answered
431; a head not complete within `http_header_timeout_seconds` of its first byte (or of the connection opening) is
answered 408, and so is a body not complete within `http_body_timeout_seconds` of the head. The connection is
closed after each of these.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from grantflow.config import Config

PROTOCOL = "grantflow.http.server:GuardedHttpToolsProtocol"  # what uvicorn imports, in every worker process
_END_OF_HEAD = b"\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0


_limits = Limits()


def configure(config: Config) -> None:
    """Set the limits for the connections of this process (before uvicorn starts serving)."""
    global _limits
    _limits = Limits(
        config.http_max_header_bytes,
        config.http_max_headers,
        config.http_header_timeout_seconds,
        config.http_body_timeout_seconds,
    )


class _Refused(Exception):
    """Stops the parser once a refusal has been sent."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol, refusing oversized request heads and timing out slow ones and slow bodies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen, in case the end of the head is split between reads
        self._header_count = 0
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None

    # -- timers -----------------------------------------------------------------------------------------------

    def _arm(self, seconds: float, message: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._time_out, message)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _time_out(self, message: str) -> None:
        self._deadline = None
        if self._in_head and self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(408, message)

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` (unless a response has begun) and close the connection."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        if self.cycle is None or not self.cycle.response_started:
            reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
            )
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    # -- connection and parser callbacks ----------------------------------------------------------------------

    # uvicorn's own override narrows asyncio's BaseTransport to Transport the same way (and says so the same way).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.header_timeout, "the request headers took too long")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head and not self._head_fits(data):
            self._refuse(431, "the request headers are too large")
            return
        super().data_received(data)

    def _head_fits(self, data: bytes) -> bool:
        """Whether the head, with these bytes, stays within the limit (or ends within it: a body may follow)."""
        room = self._limits.max_header_bytes - self._head_bytes
        seen = self._tail + data
        fits = len(data) <= room or seen.find(_END_OF_HEAD, 0, len(self._tail) + max(room, 0) + 4) != -1
        self._head_bytes += len(data)
        self._tail = seen[-3:]
        return fits

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # after a refusal the parser's own complaint is not sent
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._deadline is None:
            self._arm(self._limits.header_timeout, "the request headers took too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_headers:
            self._refuse(431, "the request has too many headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self._limits.body_timeout, "the request body took too long")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._in_head, self._head_bytes, self._tail = True, 0, b""
        super().on_response_complete()
