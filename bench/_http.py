"""A minimal HTTP/1.1 keep-alive client for load generation.

On the 2-core bench machine the load generator shares the CPU with the server and PostgreSQL,
so every millisecond it spends is one the measured system does not get (pgbench's own client is
C). This client sends requests rendered as bytes and parses answers with httptools (the parser
uvicorn uses); it costs a fraction of aiohttp's CPU per request. One connection carries one
request at a time, as a browser's or a proxy's keep-alive connection does.
"""

from __future__ import annotations

import asyncio

import httptools
import orjson


class HttpError(Exception):
    """The connection closed or the answer could not be parsed."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``await request(...)`` returns ``(status, parsed JSON body)``."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._host, self._port = host, port
        fixed = {"Host": f"{host}:{port}", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None

    async def open(self) -> Connection:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self._host, self._port)
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def request(
        self, method: str, path: str, body: object | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, object]]:
        if self._transport is None or self._transport.is_closing():
            raise HttpError("connection closed")
        payload = b"" if body is None else orjson.dumps(body)
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._fixed]
        if headers:
            head.append("".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode())
        if body is not None:
            head.append(b"Content-Type: application/json\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(payload))
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(b"".join(head) + payload)
        status, raw = await self._answer
        return status, orjson.loads(raw) if raw else {}

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"bad answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(HttpError(f"connection lost: {exc}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        raw, self._body = b"".join(self._body), []
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((self._parser.get_status_code(), raw))

    def _fail(self, error: HttpError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
