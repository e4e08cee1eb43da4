"""The router's keep-alive client (serving.router.upstream.UpstreamPool) against a raw
loopback server: what a replica's responses may look like on the wire."""

from __future__ import annotations

import asyncio

from serving.router.upstream import UpstreamPool

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n"
BODY = b'{"ok": true}'


async def _serve(requests: list[bytes]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            requests.append(head)
            length = next(
                (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                 if line.startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            # HEAD: the headers a GET would have, its content-length included, no body.
            writer.write(RESPONSE if head.startswith(b"HEAD ") else RESPONSE + BODY)
            await writer.drain()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_a_head_response_ends_at_its_headers() -> None:
    # The parser waited for the content-length's bytes a HEAD response never has: 5 s,
    # then the replica's keep-alive timeout closed it and the router answered 503.
    async def main() -> None:
        requests: list[bytes] = []
        server = await _serve(requests)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool("127.0.0.1", port)
        try:
            head = await pool.request("HEAD", b"/v2/models/m", [], b"", timeout=2)
            assert (head.status, head.body) == (200, b"")
            assert (b"content-length", b"12") in head.headers
            got = await pool.request("GET", b"/v2/models/m", [], b"", timeout=2)
            assert (got.status, got.body) == (200, BODY)
            assert [r.split(b" ")[0] for r in requests] == [b"HEAD", b"GET"]
        finally:
            pool.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 10))
