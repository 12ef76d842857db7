"""pip settings are read the way pip reads them; credentials resolve without leaking."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fetchplan.auth import CredentialStore
from fetchplan.pipconfig import parse_config_list, read_pip_settings, settings_from
from tests.conftest import MakeIndexServer, RunCli
from tests.support.wheels import Dist


def test_parse_and_precedence() -> None:
    config = parse_config_list(
        "global.index-url='http://global.invalid/simple'\n"
        "install.index-url='http://install.invalid/simple'\n"
        "global.extra-index-url='http://a.invalid/simple http://b.invalid/simple'\n"
        "global.find-links='/wheels'\n"
    )
    settings = settings_from({}, config)
    assert settings.index_url == "http://install.invalid/simple"
    assert settings.extra_index_urls == ("http://a.invalid/simple", "http://b.invalid/simple")
    assert settings.find_links == ("/wheels",)
    from_env = settings_from({"PIP_INDEX_URL": "http://env.invalid/simple"}, config)
    assert from_env.index_url == "http://env.invalid/simple"


def test_reads_pip_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = http://127.0.0.1:9/simple\ntrusted-host = mirror.invalid\n"
    )
    os.environ["PIP_CONFIG_FILE"] = str(conf)
    settings = read_pip_settings()
    assert settings.index_url == "http://127.0.0.1:9/simple"
    assert settings.trusted_hosts == ("mirror.invalid",)


def test_credentials_by_prefix_and_netrc(tmp_path: Path) -> None:
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine files.invalid login nu password np\n")
    netrc_file.chmod(0o600)
    os.environ["NETRC"] = str(netrc_file)
    store = CredentialStore(["https://u:p%40ss@idx.invalid/simple"])
    store.preload(["https://files.invalid/a.whl", "https://idx.invalid/simple/x/"])
    assert store.lookup("https://idx.invalid/simple/x/") == ("u", "p@ss")
    assert store.lookup("https://idx.invalid/files/x.whl") == ("u", "p@ss")
    assert store.lookup("https://files.invalid/a.whl") == ("nu", "np")
    assert store.lookup("https://other.invalid/") is None
    assert "p@ss" not in repr(store)


def test_tls_settings_reach_the_session() -> None:
    import requests

    settings = settings_from(
        {"PIP_CLIENT_CERT": "/certs/me.pem"}, parse_config_list("global.cert='/certs/ca.pem'\n")
    )
    assert (settings.cert, settings.client_cert) == ("/certs/ca.pem", "/certs/me.pem")
    session = requests.Session()
    settings.apply_tls(session)
    assert session.verify == "/certs/ca.pem"
    assert session.cert == "/certs/me.pem"
    untouched = requests.Session()
    settings_from({}, {}).apply_tls(untouched)
    assert untouched.verify is True
    assert untouched.cert is None


def test_plan_honours_pip_config_constraint_and_pre(
    index_server: MakeIndexServer, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    server = index_server([Dist("lib", "1.0"), Dist("lib", "2.0"), Dist("lib", "3.0rc1")])
    (tmp_path / "c.txt").write_text("lib!=3.0rc1\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nconstraint = {tmp_path / 'c.txt'}\npre = true\n")
    env = {**cli_env, "PIP_CONFIG_FILE": str(conf)}

    def planned(*extra: str) -> str:
        # A plan file of its own each time: over an earlier plan, its pin would be kept.
        output = f"p{len(list(tmp_path.glob('p*.json')))}.json"
        done = run_cli("plan", "lib", "-i", server.index_url, "-o", output, *extra, env=env)
        assert done.returncode == 0, done.stderr
        plan = json.loads((tmp_path / output).read_text())
        return str(plan["artifacts"][0]["version"])

    assert planned() == "2.0"  # the configured constraint rules out the release candidate
    (tmp_path / "c.txt").write_text("lib<3.1\n")
    assert planned() == "3.0rc1"  # pre = true from pip's configuration
    assert planned("--isolated") == "2.0"  # --isolated ignores pip's configuration
