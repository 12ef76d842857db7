"""A delaying TCP proxy that stands in for netem, and a probe that checks the shaping achieved.

``python3 delayproxy.py serve --listen HOST:PORT --upstream HOST:PORT --delay-ms 25
--rate-mbit 200`` forwards every connection to the upstream. Each direction is one link shared by
all connections: a chunk read at time t leaves when the link is free and its bytes have been
serialised at ``rate`` (0 = unlimited, when the kernel's tbf already limits the rate), and is
written ``delay`` after that. So pipelined requests and long responses flow as over a real link
with that one-way delay, instead of each chunk waiting for the previous one. A new connection
waits one round trip before its first byte goes out, as a TCP handshake would.

Back-pressure keeps memory bounded: a connection stops reading while it holds ``window`` bytes
not yet written (a TCP receive window), and every connection stops reading while the link's
queue holds more than ``queue_ms`` of data (a router's buffer).

``python3 delayproxy.py probe URL --connections 4 --bytes N`` measures throughput and the time
of a request on a new and on a kept-alive connection; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

__all__ = ["Link", "main"]

CHUNK = 64 * 1024


class Link:
    """One direction of the shaped link, shared by every connection through the proxy."""

    def __init__(self, rate_bps: float, delay: float, queue_s: float) -> None:
        self.rate_bps = rate_bps
        self.delay = delay
        self.queue_s = queue_s
        self.free_at = 0.0
        self.bytes = 0

    def schedule(self, nbytes: int, now: float) -> float:
        """Queue ``nbytes`` arriving at ``now``; return when they reach the other end."""
        start = max(now, self.free_at)
        self.free_at = start + (nbytes * 8 / self.rate_bps if self.rate_bps > 0 else 0.0)
        self.bytes += nbytes
        return self.free_at + self.delay

    def backlog(self, now: float) -> float:
        """Seconds of data queued for serialisation."""
        return max(0.0, self.free_at - now)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    link: Link,
    window: int,
    not_before: float,
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    pending = 0
    space = asyncio.Event()

    async def feed() -> None:
        nonlocal pending
        while True:
            while (backlog := link.backlog(loop.time())) > link.queue_s:
                await asyncio.sleep(backlog - link.queue_s)
            while pending >= window:
                space.clear()
                await space.wait()
            try:
                data = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            now = max(loop.time(), not_before)
            queue.put_nowait((link.schedule(len(data), now), data))
            pending += len(data)
            if not data:
                return

    async def drain() -> None:
        nonlocal pending
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
            pending -= len(data)
            space.set()

    feeder = asyncio.ensure_future(feed())
    try:
        await drain()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder


class Proxy:
    def __init__(self, upstream: tuple[str, int], up: Link, down: Link, window: int) -> None:
        self.upstream = upstream
        self.up = up
        self.down = down
        self.window = window
        self.connections = 0

    async def handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.connections += 1
        try:
            u_reader, u_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.close()
            return
        for w in (c_writer, u_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The client's first byte leaves after a simulated SYN / SYN-ACK round trip.
        handshake_done = accepted + 2 * self.up.delay
        tasks = [
            asyncio.ensure_future(_pump(c_reader, u_writer, self.up, self.window, handshake_done)),
            asyncio.ensure_future(_pump(u_reader, c_writer, self.down, self.window, 0.0)),
        ]
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for w in (c_writer, u_writer):
                with contextlib.suppress(Exception):
                    w.close()


async def _serve(args: argparse.Namespace) -> None:
    host, port = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)
    rate = args.rate_mbit * 1e6
    delay = args.delay_ms / 1000
    queue_s = max(args.queue_ms / 1000, 4 * CHUNK * 8 / rate if rate > 0 else 0.0)
    proxy = Proxy(
        (uhost, int(uport)),
        Link(rate, delay, queue_s),
        Link(rate, delay, queue_s),
        args.window,
    )
    server = await asyncio.start_server(proxy.handle, host, int(port), backlog=512)
    bound = server.sockets[0].getsockname()[1]
    if args.port_file is not None:
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(str(bound))
        tmp.replace(args.port_file)
    async with server:
        await server.serve_forever()


def _get(url: str, first: int, last: int, out: list[int]) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    conn.request("GET", parts.path, headers={"Range": f"bytes={first}-{last}"})
    resp = conn.getresponse()
    total = 0
    while chunk := resp.read(CHUNK):
        total += len(chunk)
    out.append(total)
    conn.close()


def _probe(args: argparse.Namespace) -> dict[str, float]:
    parts = urllib.parse.urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    t0 = time.perf_counter()
    conn = HTTPConnection(host, port, timeout=60)
    conn.request("HEAD", parts.path)
    resp = conn.getresponse()
    resp.read()
    new_conn = time.perf_counter() - t0
    size = int(resp.headers["Content-Length"])
    t1 = time.perf_counter()
    conn.request("HEAD", parts.path)
    conn.getresponse().read()
    kept_alive = time.perf_counter() - t1
    conn.close()
    result = {"new_connection_s": new_conn, "kept_alive_s": kept_alive}
    nbytes = min(size, args.bytes)
    for n in sorted({1, args.connections}):
        per = nbytes // n
        out: list[int] = []
        threads = [
            threading.Thread(target=_get, args=(args.url, i * per, (i + 1) * per - 1, out))
            for i in range(n)
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        result[f"mbit_s_{n}conn"] = sum(out) * 8 / elapsed / 1e6
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--listen", required=True)
    serve.add_argument("--upstream", required=True)
    serve.add_argument("--delay-ms", type=float, required=True)
    serve.add_argument("--rate-mbit", type=float, default=0.0, help="0: no rate limit")
    serve.add_argument("--window", type=int, default=4 << 20)
    serve.add_argument("--queue-ms", type=float, default=10.0)
    serve.add_argument("--port-file", type=Path)
    probe = sub.add_parser("probe")
    probe.add_argument("url")
    probe.add_argument("--connections", type=int, default=4)
    probe.add_argument("--bytes", type=int, default=64 << 20)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
        return 0
    print(json.dumps(_probe(args)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
