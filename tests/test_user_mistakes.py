"""Every mistake a user makes gets one clear line naming the file or option, and no traceback.

Each class is driven through the CLI, as a user meets it: a plan edited by hand (a lone
surrogate escape, a URL whose host or port cannot parse, a YAML key that is a number), a plan
whose every requirement is marked out, and an index that is not one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from fetchplan._fs import atomic_write_bytes, write_output
from fetchplan._urls import parses
from tests.conftest import MakeIndex, RunCli
from tests.support.wheels import Dist, build_wheel

READERS = (
    ("show",),
    ("audit",),
    ("fetch",),
    ("export", "--format", "requirements", "-o", "out.txt"),
    ("export", "--format", "pylock", "-o", "pylock.toml"),
)


@pytest.fixture
def index(make_index: MakeIndex) -> str:
    return (make_index([Dist("lib", "1.0")]) / "simple").as_uri()


def _one_line(out: Any, *fragments: str) -> str:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return str(lines[0])


def _good_plan(run_cli: RunCli, index: str, name: str) -> Any:
    out = run_cli("plan", "lib", "-i", index, "-o", name, "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    return out


def test_show_and_export_of_a_plan_with_no_artifacts(
    index: str, run_cli: RunCli, tmp_path: Path
) -> None:
    planned = run_cli(
        "plan", "lib; python_version < '3'", "-i", index, "-o", "empty.json", "--isolated"
    )
    assert planned.returncode == 0, planned.stderr
    assert json.loads((tmp_path / "empty.json").read_text())["artifacts"] == []
    shown = run_cli("show", "empty.json")
    assert shown.returncode == 0, shown.stderr
    assert "0 artifacts: 0 to download" in shown.stdout
    for command in (("show", "--graph", "dot"), ("audit",), READERS[3], READERS[4]):
        out = run_cli(command[0], "empty.json", *command[1:])
        assert out.returncode == 0, (command, out.stderr)


@pytest.mark.parametrize(
    "edit",
    [
        ("version", "1.0\udc80", "artifacts[0].version: contains a lone surrogate"),
        ("yanked_reason", "x\ud800", "artifacts[0].yanked_reason: contains a lone surrogate"),
        ("url", "http://[abc/lib-1.0-py3-none-any.whl", "artifacts[0].url: 'http://[abc/"),
        ("url", "https://host:abc/lib-1.0-py3-none-any.whl", "is not a valid URL"),
    ],
)
def test_an_edited_plan_is_refused_in_one_line_by_every_reader(
    edit: tuple[str, str, str], index: str, run_cli: RunCli, tmp_path: Path
) -> None:
    field, value, said = edit
    _good_plan(run_cli, index, "plan.json")
    document = json.loads((tmp_path / "plan.json").read_text())
    document["artifacts"][0][field] = value
    # ensure_ascii writes a lone surrogate as the escape a hand edit (or a hostile tool) would.
    (tmp_path / "plan.json").write_text(json.dumps(document, ensure_ascii=True))
    for command in READERS:
        out = run_cli(command[0], "plan.json", *command[1:])
        line = _one_line(out, "plan.json", said)
        assert line.startswith("fetchplan: error: plan.json: "), (command, line)
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "pylock.toml").exists()


def test_a_yaml_plan_with_a_number_for_a_key(index: str, run_cli: RunCli, tmp_path: Path) -> None:
    _good_plan(run_cli, index, "plan.yaml")
    document = yaml.safe_load((tmp_path / "plan.yaml").read_text())
    digest = document["artifacts"][0]["hashes"].pop("sha256")
    document["artifacts"][0]["hashes"][256] = digest
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    for command in READERS:
        out = run_cli(command[0], "plan.yaml", *command[1:])
        _one_line(out, "plan.yaml", "key 256 is not a string")


@pytest.mark.parametrize(
    ("option", "given", "said"),
    [
        ("-i", "not a url", "neither a URL nor an existing directory"),
        ("-i", "file:///nonexistent/simple", "no such directory /nonexistent/simple"),
        ("-i", "http://[abc/simple", "not a usable URL"),
        ("-i", "https://host:port/simple", "not a usable URL"),
        ("-i", "ftp://host/simple", "unsupported URL scheme 'ftp'"),
        ("-i", "https:///simple", "it names no host"),
        ("--extra-index-url", "not a url", "neither a URL nor an existing directory"),
        ("--find-links", "/nonexistent", "neither a URL nor an existing file or directory"),
        ("-f", "file:///nonexistent", "not an existing file or directory (/nonexistent)"),
        ("-f", "/dev/null", "an existing file or directory"),
    ],
)
def test_an_index_that_is_not_one_is_named(
    option: str, given: str, said: str, run_cli: RunCli
) -> None:
    out = run_cli("plan", "lib", option, given, "-o", "plan.json", "--isolated")
    assert out.returncode == 2
    line = _one_line(out, f"{given!r}: ", said)
    assert line.startswith("fetchplan plan: error: argument ") and option in line.split(":")[2]
    assert "lib" not in line.replace(given, "")  # the package is not blamed


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("-i not-a-url", "--index-url: 'not-a-url': neither a URL nor an existing directory"),
        ("--extra-index-url file:///nonexistent", "--extra-index-url: 'file:///nonexistent': no"),
        ("--index-url https://host:port/simple", "--index-url: 'https://host:port/simple': not a"),
        ("--extra-index-url http://[abc/simple", "--extra-index-url: 'http://[abc/simple': not"),
        ("--find-links ./nothere", "--find-links: '"),
        ("--index-url http://remote.invalid/simple", "plain http:// is accepted only"),
    ],
)
def test_a_requirements_file_index_that_is_not_one_is_named(
    line: str, said: str, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "requirements.txt").write_text(f"lib\n{line}\n")
    (tmp_path / "outer.txt").write_text("-r requirements.txt\n")
    for given in ("requirements.txt", "outer.txt"):
        out = run_cli("plan", "-r", given, "-o", "plan.json", "--isolated")
        assert out.returncode == 2
        # the file and line that wrote it, also through an include
        _one_line(out, "fetchplan: error: requirements.txt:2: ", said)
        assert not (tmp_path / "plan.json").exists()


PIP_LOCATIONS = [
    ("index-url", "not a url", "neither a URL nor an existing directory"),
    ("index-url", "file:///nonexistent/simple", "no such directory /nonexistent/simple"),
    ("extra-index-url", "https://host:port/simple", "not a usable URL"),
    ("extra-index-url", "http://[abc/simple", "not a usable URL"),
    ("find-links", "/nonexistent", "neither a URL nor an existing file or directory"),
    ("find-links", "https://host:99999/", "not a usable URL"),
    ("cert", "/nonexistent/ca.pem", "no such file"),
    ("client-cert", "/nonexistent/client.pem", "no such file"),
]


@pytest.fixture
def pip_conf(tmp_path: Path) -> Path:
    """Where a test writes the pip configuration file it gives as ``PIP_CONFIG_FILE``."""
    return tmp_path / "pip.conf"


def _plan_with_pip(run_cli: RunCli, index: str, key: str, env: dict[str, str]) -> Any:
    # pip's index-url counts only when the command line names no index (pip's precedence)
    where = ("--extra-index-url", index) if key == "index-url" else ("-i", index)
    return run_cli("plan", "lib", *where, "-o", "plan.json", env=env)


@pytest.mark.parametrize("case", PIP_LOCATIONS, ids=[f"{c[0]}={c[1]}" for c in PIP_LOCATIONS])
def test_a_pip_variable_that_is_not_usable_is_named(
    case: tuple[str, str, str], index: str, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    key, given, said = case
    variable = "PIP_" + key.upper().replace("-", "_")
    out = _plan_with_pip(run_cli, index, key, {**cli_env, variable: given})
    assert out.returncode == 2, out.stderr
    _one_line(out, f"fetchplan: error: {variable}: {given!r}: ", said)


@pytest.mark.parametrize("section", ["global", "install"])
@pytest.mark.parametrize("case", PIP_LOCATIONS, ids=[f"{c[0]}={c[1]}" for c in PIP_LOCATIONS])
def test_a_pip_configuration_value_that_is_not_usable_is_named(
    case: tuple[str, str, str], section: str, index: str, run_cli: RunCli, pip_conf: Path
) -> None:
    key, given, said = case
    pip_conf.write_text(f"[{section}]\n{key} = {given}\n")
    out = _plan_with_pip(run_cli, index, key, {**os.environ, "PIP_CONFIG_FILE": str(pip_conf)})
    assert out.returncode == 2, out.stderr
    _one_line(out, f"fetchplan: error: {pip_conf} [{section}] {key}: {given!r}: ", said)
    assert not (pip_conf.parent / "plan.json").exists()


def test_a_pip_value_the_command_line_overrides_is_not_refused(
    index: str, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    # pip takes the command line's index over its configured one; so does the planner.
    env = {**cli_env, "PIP_INDEX_URL": "https://host:port/simple"}
    out = run_cli("plan", "lib", "-i", index, "-o", "plan.json", env=env)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("variable", "given"),
    [("PIP_INDEX_URL", "https://host:port/simple"), ("PIP_EXTRA_INDEX_URL", "http://[abc/")],
)
def test_fetch_names_a_pip_url_that_does_not_parse(
    variable: str, given: str, index: str, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    _good_plan(run_cli, index, "plan.json")
    out = run_cli("fetch", "plan.json", env={**cli_env, variable: given})
    assert out.returncode == 2, out.stderr
    _one_line(out, f"fetchplan: error: {variable}: {given!r}: not a usable URL")
    for option in ("--index-url", "--extra-index-url"):
        out = run_cli("fetch", "plan.json", option, given)
        assert out.returncode == 2, out.stderr
        _one_line(out, f"argument {option}: {given!r}: not a usable URL")


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://host/x", True),
        ("https://[::1]:8080/x", True),
        ("file:///tmp/x", True),
        ("http://[abc/x", False),
        ("https://h[st/x", False),
        ("https://host]/x", False),
        ("https://[not-ipv6]/x", False),
        ("https://host:abc/x", False),
        ("https://host:99999/x", False),
    ],
)
def test_which_urls_parse(url: str, usable: bool) -> None:
    assert parses(url) is usable


def test_a_file_given_to_the_wrong_command_is_named_in_one_line(
    index: str, run_cli: RunCli, tmp_path: Path
) -> None:
    _good_plan(run_cli, index, "plan.json")
    assert run_cli("fetch", "plan.json").returncode == 0
    manifest = "wheels/manifest.json"
    _one_line(run_cli("fetch", manifest), "this is a fetchplan manifest, not a plan", "install")
    _one_line(run_cli("show", manifest), "this is a fetchplan manifest, not a plan")
    out = run_cli("install", "plan.json", "--venv", "venv")
    _one_line(out, "plan.json", "this is a fetchplan plan, not a manifest", "`fetchplan fetch`")
    assert not (tmp_path / "venv").exists()
    assert run_cli("export", "plan.json", "--format", "pip-report", "-o", "r.json").returncode == 0
    _one_line(run_cli("fetch", "r.json"), "pip installation report", "`fetchplan import`")
    _one_line(run_cli("report", "plan.json", "-o", "chart.html"), "this is a fetchplan plan")
    (tmp_path / "pylock.toml").write_text('lock-version = "1.0"\n')
    _one_line(run_cli("fetch", "pylock.toml"), "a pylock.toml lock file?", "`fetchplan import`")


def test_outputs_go_to_stdout_for_dash_and_through_special_files(
    index: str, run_cli: RunCli, tmp_path: Path
) -> None:
    out = run_cli("plan", "lib", "-i", index, "-o", "-", "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["artifacts"][0]["name"] == "lib"  # only the plan on stdout
    assert "wrote the plan to standard output" in out.stderr
    assert not (tmp_path / "-").exists()
    _good_plan(run_cli, index, "plan.json")
    exported = run_cli("export", "plan.json", "--format", "requirements", "-o", "-")
    assert exported.returncode == 0 and "lib==1.0" in exported.stdout
    assert not (tmp_path / "-").exists()

    # A symbolic link stays a link: the regular file it leads to is replaced.
    (tmp_path / "real.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    assert (
        run_cli("export", "plan.json", "--format", "requirements", "-o", "link.txt").returncode == 0
    )
    assert (tmp_path / "link.txt").is_symlink()
    assert "lib==1.0" in (tmp_path / "real.txt").read_text()

    # A FIFO (and a link to one, as /dev/stdout is to a descriptor) is written through.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    for name in ("fifo", "to-fifo"):
        received: list[bytes] = []
        reader = threading.Thread(target=lambda into=received: into.append(fifo.read_bytes()))
        reader.start()
        done = run_cli("export", "plan.json", "--format", "requirements", "-o", name)
        reader.join(timeout=30)
        assert done.returncode == 0, done.stderr
        assert b"lib==1.0" in received[0]
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert (tmp_path / "to-fifo").is_symlink()


def test_exports_of_a_multi_target_plan_match_every_real_micro_release(
    make_index: MakeIndex, run_cli: RunCli, tmp_path: Path
) -> None:
    root = make_index(
        [
            Dist("app", "1.0", requires=['backport; python_version < "3.11"']),
            Dist("backport", "1.0"),
        ]
    )
    out = run_cli(
        "plan", "app", "-i", (root / "simple").as_uri(), "-o", "plan.json", "--isolated",
        "--target", "py=3.10,platform=manylinux_2_17_x86_64",
        "--target", "py=3.11,platform=manylinux_2_17_x86_64",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for fmt, name in (("requirements", "req.txt"), ("pylock", "pylock.toml")):
        assert run_cli("export", "plan.json", "--format", fmt, "-o", name).returncode == 0
        # The markers pip and uv evaluate (the target records keep their values as planned).
        text = (tmp_path / name).read_text().splitlines()
        lines = [line for line in text if "marker = " in line or ("; " in line and "==" in line)]
        assert not [line for line in lines if "python_full_version" in line]
        marked = [line for line in lines if "python_version" in line]
        assert marked and all("3.10" in line for line in marked), lines


def test_import_of_pip_compile_output_with_find_links_paths(
    run_cli: RunCli, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "project" / "wheelhouse", Dist("lib", "1.0"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    compiled = tmp_path / "project" / "requirements.txt"
    compiled.write_text(
        "#\n# This file is autogenerated by pip-compile with Python 3.11\n#\n"
        "--find-links wheelhouse\n\n"
        f"lib==1.0 \\\n    --hash=sha256:{digest}\n    # via -r requirements.in\n"
    )
    out = run_cli("import", compiled, "-o", "plan.json", "--isolated")
    assert out.returncode == 0, out.stderr
    document = json.loads((tmp_path / "plan.json").read_text())
    assert document["indexes"] == [
        {"url": (tmp_path / "project" / "wheelhouse").as_uri(), "kind": "find-links"}
    ]
    fetched = run_cli("fetch", "plan.json")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ("plan", "lib", "--inex-url", "x"),
            "unrecognized arguments: --inex-url x; did you mean --index-url?",
        ),
        (("fetch", "plan.json", "--no-cahce"), "did you mean --no-cache?"),
        (("fecth", "plan.json"), "invalid choice: 'fecth'"),
        (("fecth", "plan.json"), "; did you mean fetch?"),
    ],
)
def test_a_mistyped_option_or_command_gets_a_suggestion(
    argv: tuple[str, ...], said: str, run_cli: RunCli
) -> None:
    out = run_cli(*argv)
    assert out.returncode == 2
    assert said in out.stderr.splitlines()[-1]
    assert "Traceback" not in out.stderr


def test_an_unknown_option_like_nothing_known_gets_no_suggestion(run_cli: RunCli) -> None:
    out = run_cli("plan", "lib", "--zzzz")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "fetchplan plan: error: unrecognized arguments: --zzzz (see fetchplan plan --help)"
    ]


def test_only_outputs_the_user_names_are_written_through_links(tmp_path: Path) -> None:
    # A link planted where fetchplan keeps its own files (a manifest, a checkpoint) is
    # replaced, never followed; a link the user names as an output leads to its file.
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    planted = tmp_path / "manifest.json"
    planted.symlink_to(victim)
    atomic_write_bytes(planted, b"{}\n")
    assert not planted.is_symlink() and planted.read_text() == "{}\n"
    assert victim.read_text() == "keep\n"
    chosen = tmp_path / "out.txt"
    chosen.symlink_to(victim)
    write_output(chosen, b"new\n")
    assert chosen.is_symlink() and victim.read_text() == "new\n"
