"""Measured on a real server: six 100 MB bodies sent at once leave its memory where it was.

Each goes to a door an attacker reaches without a token (a usage batch, Stripe's webhook, the
login form), streamed chunked or announced by its Content-Length; each is answered 413 after a
few MB at most, and the server's resident memory is sampled throughout.
"""

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import ADMIN_TOKEN, fresh_database
from servers import running_server

pytestmark = [pytest.mark.e2e]

HUNDRED_MB = 100 * 1000 * 1000
PIECE = 1024 * 1024
DOORS = [
    ("/v1/usage/batch", "application/json"),
    ("/webhooks/stripe", "application/json"),
    ("/login", "application/x-www-form-urlencoded"),
]


def test_six_100_mb_bodies_at_once_leave_the_worker_within_50_mb(tmp_path: Path) -> None:
    with (
        fresh_database("sqlite", tmp_path) as url,
        running_server(url, ADMIN_TOKEN) as base_url,
    ):
        port = urlsplit(base_url).port or 80
        processes = _server_processes(port)
        # Every door once (their code loaded, their first allocations made) before measuring.
        for path, kind in DOORS:
            assert _send(port, path, kind, chunked=True, total=3 * PIECE) == 413
            httpx.post(base_url + path, content=b"{}", headers={"Content-Type": kind})
        baseline = _rss(processes)
        peak, stop = [baseline], threading.Event()
        sampler = threading.Thread(target=_sample, args=(processes, peak, stop))
        sampler.start()
        try:
            with ThreadPoolExecutor(6) as pool:
                sent = [
                    pool.submit(_send, port, path, kind, chunked=chunked, total=HUNDRED_MB)
                    for path, kind in DOORS
                    for chunked in (True, False)
                ]
                statuses = [future.result(timeout=120) for future in sent]
        finally:
            stop.set()
            sampler.join()
        after = _rss(processes)
        assert httpx.get(base_url + "/healthz").status_code == 200
    assert statuses == [413] * 6
    grown = (max(peak[0], after) - baseline) / 1e6
    assert grown < 50, f"resident memory grew {grown:.0f} MB over {baseline / 1e6:.0f} MB"


def _send(port: int, path: str, kind: str, *, chunked: bool, total: int) -> int | None:
    """POST `total` bytes to `path` as fast as the server takes them, stopping once it has
    answered; returns the answer's status (None: the connection closed with no answer)."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {kind}\r\n"
        f"{framing}\r\n\r\n"
    )
    piece = b"[" * PIECE
    if chunked:
        piece = f"{PIECE:x}\r\n".encode() + piece + b"\r\n"
    answered: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        reader = threading.Thread(target=_read_head, args=(sock, answered))
        reader.start()
        try:
            sock.sendall(head.encode())
            sent = 0
            while sent < total and reader.is_alive():
                sock.sendall(piece)
                sent += PIECE
            if chunked and sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering: what `Connection: close` says
        reader.join(timeout=30)
    if not answered or not answered[0].startswith(b"HTTP/1.1 "):
        return None
    return int(answered[0].split()[1])


def _read_head(sock: socket.socket, answered: list[bytes]) -> None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
    except OSError:
        pass
    answered.append(data)


def _server_processes(port: int) -> list[int]:
    """`billplane serve --port PORT` and every process under it (its workers, if any)."""
    parents: dict[int, int] = {}
    master = None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"serve" in argv and str(port).encode() in argv:
            master = int(entry)
    assert master is not None, f"no `billplane serve --port {port}` process"
    tree = [master]
    for pid in tree:
        tree += [child for child, parent in parents.items() if parent == pid]
    return tree


def _rss(processes: list[int]) -> int:
    """The processes' resident memory together, in bytes (VmRSS)."""
    total = 0
    for pid in processes:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _sample(processes: list[int], peak: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss(processes))
        time.sleep(0.02)
