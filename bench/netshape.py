"""The shaped network between the bench's clients and its nginx, and its teardown.

Three ways, best first (``auto`` picks the first that works here):

``netem``
    nginx in a network namespace of its own, the clients in a second one, joined by a veth pair
    whose both ends carry ``netem delay D rate R``: the kernel shapes everything.
``tbf+proxy``
    the same two namespaces and veth pair; ``tbf`` limits the rate on both ends, and the
    delaying proxy (``delayproxy.py``, on the client namespace's loopback) adds the delay.
``proxy``
    no namespaces: nginx on loopback, the delaying proxy on loopback adds delay and rate.

Only loopback and the two namespaces created here are ever addressed. The veth addresses are in
the benchmarking range (RFC 2544) and exist only inside those namespaces; ``close`` deletes
them (deleting a namespace deletes its veth end and its routes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MODES", "Network", "NetworkError"]

MODES = ("auto", "netem", "tbf+proxy", "proxy")
NS_CLIENT = "fpbench-cli"
NS_SERVER = "fpbench-srv"
VETH_CLIENT = "fpb-cli0"
VETH_SERVER = "fpb-srv0"
CLIENT_ADDR = "198.18.0.1"
SERVER_ADDR = "198.18.0.2"
SERVER_PORT = 8080
PROXY_PORT = 8081
HERE = Path(__file__).resolve().parent


class NetworkError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _tc(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "tc", *args], capture_output=True, text=True, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(prefix: list[str], host: str, port: int, timeout: float = 15.0) -> None:
    code = (
        "import socket,sys,time\n"
        f"end=time.time()+{timeout}\n"
        "while time.time()<end:\n"
        "  try:\n"
        f"    socket.create_connection(({host!r},{port}),timeout=1).close(); sys.exit(0)\n"
        "  except OSError: time.sleep(0.05)\n"
        "sys.exit(1)\n"
    )
    if subprocess.run([*prefix, sys.executable, "-c", code], check=False).returncode != 0:
        raise NetworkError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


@dataclass
class Network:
    """A running shaped path: ``client_prefix`` runs a command on the client side of it."""

    mode: str
    delay_ms: float
    rate_mbit: float
    workdir: Path
    client_prefix: list[str] = field(default_factory=list)
    server_prefix: list[str] = field(default_factory=list)
    server_listen: str = ""
    base_url: str = ""
    note: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _namespaces: bool = False

    # --- set-up -------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, mode: str, delay_ms: float, rate_mbit: float, workdir: Path) -> Network:
        """Make the path for ``mode`` (nginx not yet started: see :meth:`start_server`)."""
        if mode not in MODES:
            raise NetworkError(f"unknown network mode {mode!r}")
        net = cls(mode=mode, delay_ms=delay_ms, rate_mbit=rate_mbit, workdir=workdir)
        reasons: list[str] = []
        candidates = ["netem", "tbf+proxy", "proxy"] if mode == "auto" else [mode]
        for cand in candidates:
            try:
                net._setup(cand)
            except NetworkError as exc:
                reasons.append(f"{cand}: {exc}")
                net.close()
                if mode != "auto":
                    raise
                continue
            net.mode = cand
            net.note = "; ".join(reasons)
            return net
        raise NetworkError("no way to shape the network: " + "; ".join(reasons))

    def _setup(self, mode: str) -> None:
        if mode == "proxy":
            port = _free_port()
            self.server_listen = f"127.0.0.1:{port}"
            self.client_prefix = []
            self.server_prefix = []
            return
        if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
            raise NetworkError("needs root, ip and tc")
        self._cleanup_stale()
        self._namespaces = True
        for ns in (NS_CLIENT, NS_SERVER):
            res = _ip("netns", "add", ns, check=False)
            if res.returncode != 0:
                raise NetworkError(f"ip netns add {ns}: {res.stderr.strip()}")
            _ip("-n", ns, "link", "set", "lo", "up")
        res = _ip(
            "link",
            "add",
            VETH_CLIENT,
            "netns",
            NS_CLIENT,
            "type",
            "veth",
            "peer",
            "name",
            VETH_SERVER,
            "netns",
            NS_SERVER,
            check=False,
        )
        if res.returncode != 0:
            raise NetworkError(f"veth pair: {res.stderr.strip()}")
        for ns, dev, addr in (
            (NS_CLIENT, VETH_CLIENT, CLIENT_ADDR),
            (NS_SERVER, VETH_SERVER, SERVER_ADDR),
        ):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        rate = f"{self.rate_mbit:g}mbit"
        if mode == "netem":
            for ns, dev in ((NS_CLIENT, VETH_CLIENT), (NS_SERVER, VETH_SERVER)):
                res = _tc(
                    ns,
                    "qdisc",
                    "add",
                    "dev",
                    dev,
                    "root",
                    "netem",
                    "delay",
                    f"{self.delay_ms:g}ms",
                    "rate",
                    rate,
                    "limit",
                    "100000",
                )
                if res.returncode != 0:
                    raise NetworkError(res.stderr.strip() or "not available")
        else:
            rate_bytes = self.rate_mbit * 1e6 / 8
            burst = max(128 * 1024, int(rate_bytes / 100))
            # Queue room for two bandwidth-delay products, so TCP is not starved by drops.
            latency_ms = max(20.0, 4 * self.delay_ms)
            for ns, dev in ((NS_CLIENT, VETH_CLIENT), (NS_SERVER, VETH_SERVER)):
                res = _tc(
                    ns,
                    "qdisc",
                    "add",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    str(burst),
                    "latency",
                    f"{latency_ms:g}ms",
                )
                if res.returncode != 0:
                    raise NetworkError(res.stderr.strip() or "not available")
        self.client_prefix = ["ip", "netns", "exec", NS_CLIENT]
        self.server_prefix = ["ip", "netns", "exec", NS_SERVER]
        self.server_listen = f"{SERVER_ADDR}:{SERVER_PORT}"

    def after_server_started(self) -> None:
        """Wait for nginx, then start the proxy where this mode needs one; set ``base_url``."""
        host, port = self.server_listen.rsplit(":", 1)
        _wait_port(self.server_prefix, host, int(port))
        if self.mode == "netem":
            self.base_url = f"http://{self.server_listen}"
            return
        if self.mode == "tbf+proxy":
            listen = f"127.0.0.1:{PROXY_PORT}"
            rate = 0.0
        else:
            listen = f"127.0.0.1:{_free_port()}"
            rate = self.rate_mbit
        # Per connection, room for two bandwidth-delay products (a TCP window that never limits).
        window = max(1 << 20, int(2 * self.rate_mbit * 1e6 / 8 * 2 * self.delay_ms / 1000))
        log = (self.workdir / "proxy.log").open("ab")
        proc = subprocess.Popen(
            [
                *self.client_prefix,
                sys.executable,
                str(HERE / "delayproxy.py"),
                "serve",
                "--listen",
                listen,
                "--upstream",
                self.server_listen,
                "--delay-ms",
                f"{self.delay_ms:g}",
                "--rate-mbit",
                f"{rate:g}",
                "--window",
                str(window),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._procs.append(proc)
        (self.workdir / "proxy.pid").write_text(str(proc.pid))
        lhost, lport = listen.rsplit(":", 1)
        _wait_port(self.client_prefix, lhost, int(lport))
        self.base_url = f"http://{listen}"

    def proxy_cpu_s(self) -> float:
        """CPU seconds the delaying proxy has used so far (0 without a proxy)."""
        pid_file = self.workdir / "proxy.pid"
        try:
            fields = Path(f"/proc/{int(pid_file.read_text())}/stat").read_text().rsplit(")", 1)[1]
        except (OSError, ValueError):
            return 0.0
        parts = fields.split()
        # utime and stime are fields 14 and 15 of stat(5); parts[0] is field 3.
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def spawn_server(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start the server (argv) on the server side; it is stopped by :meth:`close`."""
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                [*self.server_prefix, *argv], stdout=fh, stderr=fh, start_new_session=True
            )
        self._procs.insert(0, proc)
        return proc

    def describe(self) -> str:
        shaping = f"{self.delay_ms:g} ms each way, {self.rate_mbit:g} Mbit/s"
        how = {
            "netem": "netem on a veth pair between two network namespaces",
            "tbf+proxy": (
                "tbf (rate) on a veth pair between two network namespaces "
                "+ user-space delaying proxy (delay)"
            ),
            "proxy": "user-space delaying proxy on loopback (delay and rate)",
        }[self.mode]
        extra = f" (not used: {self.note})" if self.note else ""
        return f"{how}; {shaping}{extra}"

    # --- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop what was started and delete the namespaces; safe to call more than once."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 15)
        deadline = time.monotonic() + 5
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
        self._procs.clear()
        if self._namespaces:
            self._cleanup_stale()
            self._namespaces = False

    @staticmethod
    def _cleanup_stale() -> None:
        existing = _ip("netns", "list", check=False).stdout.split()
        for ns in (NS_CLIENT, NS_SERVER):
            if ns in existing:
                _ip("netns", "del", ns, check=False)
