"""The planner follows a redirect only where the executor would: https, loopback, trusted hosts.

A redirect to plain ``http://`` on another host would let anyone on the path swap the page (and
with it every hash the plan records). The non-loopback host here is never contacted: requests
for it would go to an HTTP proxy on loopback, which must see none.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeIndexServer, RunCli
from tests.support.servers import IndexRequestHandler
from tests.support.wheels import Dist

FAR = "http://pages.example.invalid"


def _redirecting(handler: IndexRequestHandler) -> bool:
    if handler.path.startswith("/simple/app/"):
        handler.respond(302, headers={"Location": f"{FAR}/simple/app/"})
        return True
    return False


def test_plan_refuses_a_redirect_to_plain_http_on_another_host(
    index_server: MakeIndexServer, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    index = index_server([Dist("app", "1.0")])
    index.set_handler_hook(_redirecting)
    (tmp_path / "empty").mkdir()
    proxy = index_server(tmp_path / "empty")
    env = {
        **cli_env,
        "HTTP_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    out = run_cli("plan", "app", "-i", index.index_url, "-o", "plan.json", "--no-cache", env=env)
    assert out.returncode != 0
    assert not (tmp_path / "plan.json").exists()
    assert f"redirect to plain {FAR}/simple/app/ refused" in out.stderr
    assert "--trusted-host" in out.stderr
    assert "Traceback" not in out.stderr
    assert proxy.requests() == []

    # Trusted, the same redirect is followed (through the proxy, which has no such page).
    trusted = run_cli(
        "plan",
        "app",
        "-i",
        index.index_url,
        "--trusted-host",
        "pages.example.invalid",
        "-o",
        "plan.json",
        "--no-cache",
        env=env,
    )
    assert trusted.returncode != 0
    assert [r.path for r in proxy.requests()][:1] == [f"{FAR}/simple/app/"]
