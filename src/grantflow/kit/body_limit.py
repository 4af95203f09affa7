"""Refuse request bodies over the limit without ever holding them.

A body that declares a length over the limit is refused before the app sees it; a chunked one is counted as it
arrives. Either way the rest is read and thrown away (up to DRAIN_FACTOR times the limit; a larger declared
length is refused at once) so that the client, still sending, reads the 413 instead of a connection reset.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY = json.dumps(
    {"error_code": "OUT_OF_RESOURCES", "error_message": "request body too large", "property": "body"}
).encode()


DRAIN_FACTOR = 16


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            if declared.isdigit() and int(declared) <= self.max_bytes * DRAIN_FACTOR:
                await _drain(receive, self.max_bytes * DRAIN_FACTOR)
            await _too_large(send)
            return
        received = 0
        overflowed = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    raise _TooLarge
            return message

        async def answer_too_large() -> None:
            nonlocal replaced
            if not replaced:
                replaced = True
                await _drain(receive, self.max_bytes * DRAIN_FACTOR)
                await _too_large(send)

        async def guarded_send(message: Message) -> None:
            # FastAPI turns a failure while reading the body into its own 400; answer 413 instead.
            if overflowed:
                await answer_too_large()
            else:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            await answer_too_large()


class _TooLarge(Exception):
    pass


async def _drain(receive: Receive, cap: int) -> None:
    """Read and discard the rest of the body, holding none of it; give up after `cap` bytes."""
    drained = 0
    while drained <= cap:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        drained += len(message.get("body", b""))


async def _too_large(send: Send) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
