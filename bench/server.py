"""nginx over the static index: content negotiation for PEP 691, an access log of bytes sent."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

__all__ = ["LOG_FORMAT", "nginx_argv", "nginx_binary", "stop_stale", "write_nginx_conf"]

# ``bytes_sent status uri``: measure.AccessLog reads the first and third fields.
LOG_FORMAT = "$bytes_sent $status $request_uri"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx not found: apt-get install nginx-light")
    return found


def write_nginx_conf(
    rundir: Path, docroot: Path, listen: str, *, page_validators: bool = False
) -> Path:
    """Write ``rundir/nginx.conf`` serving ``docroot`` on ``listen``; return its path.

    The real-pages index's pages go out as this machine's index sends them: without
    ``ETag`` or ``Last-Modified`` (so a client can neither revalidate them nor guess them
    fresh), unless ``page_validators``. The minimal index keeps nginx's (as in earlier rounds).
    """
    real_pages = (
        ""
        if page_validators
        else (
            "etag off;\n            if_modified_since off;\n"
            '            add_header Last-Modified "";\n            '
        )
    )
    for sub in ("tmp", "logs"):
        (rundir / sub).mkdir(parents=True, exist_ok=True)
    conf = rundir / "nginx.conf"
    tmp = rundir / "tmp"
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""{user}worker_processes 1;
pid {rundir / "nginx.pid"};
error_log {rundir / "logs" / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    log_format bench '{LOG_FORMAT}';
    client_body_temp_path {tmp / "body"};
    proxy_temp_path {tmp / "proxy"};
    fastcgi_temp_path {tmp / "fastcgi"};
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    map $http_accept $pep691_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }}
    server {{
        listen {listen} backlog=1024;
        root {docroot};
        access_log {rundir / "logs" / "access.log"} bench;
        location ~ /real-[a-z0-9]+/simple/ {{
            types {{
                text/html html;
                application/vnd.pypi.simple.v1+json json;
            }}
            index $pep691_index;
            {real_pages}add_header Vary Accept;
        }}
        location ~ /simple/ {{
            types {{
                text/html html;
                application/vnd.pypi.simple.v1+json json;
            }}
            index $pep691_index;
            add_header Vary Accept;
        }}
        location ~ /files/ {{
            types {{ }}
            default_type application/octet-stream;
        }}
    }}
}}
"""
    )
    return conf


def nginx_argv(rundir: Path) -> list[str]:
    return [
        nginx_binary(),
        "-p",
        str(rundir),
        "-c",
        str(rundir / "nginx.conf"),
        "-e",
        str(rundir / "logs" / "error.log"),
        "-g",
        "daemon off;",
    ]


def stop_stale(rundir: Path) -> None:
    """Stop a server or proxy that a killed earlier run of the bench left behind (by pid file)."""
    for pidfile in (rundir / "nginx.pid", rundir / "proxy.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(rundir).encode() in cmdline or b"delayproxy.py" in cmdline:
                os.kill(pid, 15)
        with contextlib.suppress(OSError):
            pidfile.unlink()
