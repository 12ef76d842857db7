"""A real nginx (the system binary) serving a ``write_index`` root on a loopback port.

``NginxServer(root, prefix)`` writes ``prefix/nginx.conf`` and runs ``nginx -p prefix -c
nginx.conf`` in the foreground as a child process (pid file, logs and temp paths all inside
``prefix``; ``user root;`` only when running as root so workers keep the same user). It is
answering when the constructor returns; a failure to start raises ``RuntimeError`` with nginx's
error log. ``close()`` stops it (SIGTERM, then SIGKILL) and waits.

What it serves (nginx's own file handling: real ``Range`` incl. multi-range, ``ETag``,
``Last-Modified``, ``If-Range``, ``HEAD``, keep-alive):

- ``/simple/`` and ``/simple/<project>/``: ``index.json`` with Content-Type
  ``application/vnd.pypi.simple.v1+json`` when ``Accept`` names
  ``application/vnd.pypi.simple.v1+json`` (or ``...latest+json``) with a q other than 0,
  otherwise ``index.html`` as ``text/html``. This is a regex, not full q-value ranking: a client
  preferring HTML by q but still listing JSON gets JSON. ``Vary: Accept`` is sent.
- ``/files/...``: the distributions and ``.metadata`` files (``application/octet-stream``).

Counters come from the access log, one JSON object per finished request: nginx writes the
line when a request ends (including a client hanging up), so ``wait_for_requests(n)`` before
asserting on requests a client has only just finished, or ``wait_idle()`` once a client is gone
(no connection left open: every request it made is logged).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ProcessServer

__all__ = ["NginxOptions", "NginxRequest", "NginxServer", "find_nginx"]

_START_ATTEMPTS = 5


@dataclass(frozen=True)
class NginxOptions:
    """Fixed at start (nginx reads its configuration once)."""

    limit_rate: int | None = None
    """Bytes per second per connection for every response (nginx ``limit_rate``). nginx
    counts in whole seconds and lets the first second's worth go at once: a response of
    ``size`` bytes takes about ``size / limit_rate - 1`` seconds (at least), so make files
    several times ``limit_rate`` for a transfer that is reliably still running."""
    extra_server_config: str = ""
    """Raw directives appended inside ``server { }`` (e.g. extra ``location`` blocks)."""
    start_timeout: float = 10.0


@dataclass(frozen=True)
class NginxRequest:
    """One access-log line."""

    method: str
    path: str
    """``$request_uri``: the target as sent, with the query string."""
    status: int
    body_bytes_sent: int
    range: str | None
    if_range: str | None
    accept: str | None
    content_type: str | None
    completed: bool
    """nginx's ``$request_completion``: False when the client went away mid-response."""


def find_nginx() -> str:
    """The nginx binary: on PATH or Debian's ``/usr/sbin/nginx``; RuntimeError if absent."""
    found = shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").is_file():
        found = "/usr/sbin/nginx"
    if found is None:
        raise RuntimeError("nginx is not installed (the tests need it; .ci/run installs it)")
    return found


_LOG_FORMAT = (
    '{"method":"$request_method","path":"$request_uri","status":$status,'
    '"body_bytes_sent":$body_bytes_sent,"range":"$http_range","if_range":"$http_if_range",'
    '"accept":"$http_accept","content_type":"$sent_http_content_type",'
    '"completed":"$request_completion"}'
)


_STATUS_PATH = "/.nginx-status"
"""nginx's ``stub_status`` (open connections), for :meth:`NginxServer.wait_idle`; not logged."""


def _config(root: Path, prefix: Path, port: int, options: NginxOptions) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    rate = f"        limit_rate {options.limit_rate};\n" if options.limit_rate is not None else ""
    return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    types {{ text/html html; application/json json; }}
    default_type application/octet-stream;
    log_format fetchplan escape=json '{_LOG_FORMAT}';
    access_log {prefix / "access.log"} fetchplan;
{temp}    sendfile on;
    # Small sendfile chunks keep limit_rate smooth (the 2m default lets large bursts through).
    sendfile_max_chunk 64k;
    keepalive_timeout 30s;
    server_tokens off;
    map $http_accept $simple_variant {{
        default index.html;
        "~*application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json(?!\\s*;\\s*q\\s*=\\s*0(\\.0*)?\\s*(,|$))"
            index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
{rate}        location /simple/ {{
            location ~ /$ {{
                types {{
                    application/vnd.pypi.simple.v1+json json;
                    text/html html;
                }}
                add_header Vary Accept always;
                try_files $uri$simple_variant ${{uri}}index.html =404;
            }}
        }}
        location /files/ {{ }}
        location = {_STATUS_PATH} {{ stub_status; access_log off; }}
{options.extra_server_config}
    }}
}}
"""


class NginxServer(ProcessServer):
    """A running nginx over ``root``; see the module docstring."""

    def __init__(self, root: Path, prefix: Path, options: NginxOptions | None = None) -> None:
        self.root = Path(root).resolve()
        self.prefix = Path(prefix).resolve()
        self.options = options if options is not None else NginxOptions()
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        binary = find_nginx()

        def launch() -> subprocess.Popen[bytes]:
            conf = self.prefix / "nginx.conf"
            conf.write_text(_config(self.root, self.prefix, self.port, self.options))
            with (self.prefix / "stderr.log").open("wb") as stderr:
                return subprocess.Popen(
                    [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.error_log)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                )

        self._start("nginx", launch, timeout=self.options.start_timeout, attempts=_START_ATTEMPTS)
        # The probe is nobody's traffic; wait for its log line so it cannot land later.
        self.wait_for_requests(1)
        self.reset_counters()

    def file_url(self, filename: str) -> str:
        """The URL of ``root/files/<filename>``."""
        return f"{self.url}/files/{urllib.parse.quote(filename)}"

    def requests(self, path_substring: str | None = None) -> list[NginxRequest]:
        """Finished requests from the access log since the last reset, oldest first."""
        records = []
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                if not line.strip():
                    continue
                raw = json.loads(line)
                record = NginxRequest(
                    method=raw["method"],
                    path=raw["path"],
                    status=int(raw["status"]),
                    body_bytes_sent=int(raw["body_bytes_sent"]),
                    range=raw["range"] or None,
                    if_range=raw["if_range"] or None,
                    accept=raw["accept"] or None,
                    content_type=raw["content_type"] or None,
                    completed=raw["completed"] == "OK",
                )
                if path_substring is None or path_substring in record.path:
                    records.append(record)
        return records

    def wait_for_requests(
        self, count: int, path_substring: str | None = None, timeout: float = 5.0
    ) -> list[NginxRequest]:
        """Wait until the log holds at least ``count`` matching requests; return them all.

        Raises ``TimeoutError`` listing what was logged when they do not show up in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(path_substring)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nginx logged {len(found)} of {count} requests for {path_substring!r}: {found}"
                )
            time.sleep(0.02)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no connection is open but the one asking: every request a client made,
        one it hung up on too, has ended and is in the access log.

        Raises ``TimeoutError`` with the last status when connections stay open.
        """
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"{self.url}{_STATUS_PATH}", timeout=timeout) as answer:
                status = answer.read().decode("ascii")
            match = re.match(r"Active connections: (\d+)", status)
            if match is not None and int(match.group(1)) <= 1:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx still has connections open: {status}")
            time.sleep(0.02)

    def bytes_sent(self, path_substring: str | None = None) -> int:
        """Body bytes sent (``$body_bytes_sent``) for finished requests since the last reset."""
        return sum(r.body_bytes_sent for r in self.requests(path_substring))

    def reset_counters(self) -> None:
        """Empty the access log (nginx keeps appending to the same open file)."""
        with self.access_log.open("r+b") as handle:
            handle.truncate(0)

    def _log(self) -> str:
        parts = []
        for path in (self.prefix / "stderr.log", self.error_log):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)
