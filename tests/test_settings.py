"""pip's precedence over the planner's settings, as a table: layers in, settings out.

Each row gives the command line (``PlanOptions`` fields), the requirements files' global
options (``RequirementOptions`` fields) and pip's configuration (``PipSettings`` fields: its
environment variables over its files, as ``pipconfig.settings_from`` combines them), and the
settings :func:`fetchplan.planner.settings.settings` must give. Fields a row does not name
must keep their defaults (no index but pip's default, nothing trusted, every flag off).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

from fetchplan.errors import InputError
from fetchplan.pipconfig import PipSettings, settings_from
from fetchplan.planner.options import PlanOptions
from fetchplan.planner.reqfile import RequirementOptions
from fetchplan.planner.settings import PlanSettings, settings

DEFAULT = "https://default.invalid/simple"
NOW = dt.datetime(2026, 3, 10, 12, 0, 0, 500000, tzinfo=dt.UTC)
"""The settings' ``now``, which pip's duration spelling counts back from."""
JAN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FEB = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Row:
    name: str
    expected: dict[str, Any]
    cli: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    pip: dict[str, Any] = field(default_factory=dict)


ROWS = [
    Row("nothing given: pip's default index", {}),
    Row(
        "pip's configured index replaces the default",
        {"index_urls": ("https://pip.invalid/simple",)},
        pip={"index_url": "https://pip.invalid/simple"},
    ),
    Row(
        "the command line's index over pip's",
        {"index_urls": ("https://cli.invalid/simple",)},
        cli={"index_url": "https://cli.invalid/simple"},
        pip={"index_url": "https://pip.invalid/simple"},
    ),
    Row(
        "a requirements file's -i over the command line's",
        {"index_urls": ("https://file.invalid/simple",)},
        cli={"index_url": "https://cli.invalid/simple"},
        files={"index_url": "https://file.invalid/simple"},
        pip={"index_url": "https://pip.invalid/simple"},
    ),
    Row(
        "a file's -i over pip's alone",
        {"index_urls": ("https://file.invalid/simple",)},
        files={"index_url": "https://file.invalid/simple"},
        pip={"index_url": "https://pip.invalid/simple"},
    ),
    Row(
        "extra indexes follow the index: pip's, the command line's, the files'",
        {
            "index_urls": (
                DEFAULT,
                "https://pip-x.invalid/simple",
                "https://cli-x.invalid/simple",
                "https://file-x.invalid/simple",
            )
        },
        cli={"extra_index_urls": ("https://cli-x.invalid/simple",)},
        files={"extra_index_urls": ("https://file-x.invalid/simple",)},
        pip={"extra_index_urls": ("https://pip-x.invalid/simple",)},
    ),
    Row(
        "an extra index given twice stays twice (locate drops the copy)",
        {"index_urls": (DEFAULT, "https://x.invalid/simple", "https://x.invalid/simple")},
        cli={"extra_index_urls": ("https://x.invalid/simple",)},
        files={"extra_index_urls": ("https://x.invalid/simple",)},
    ),
    Row(
        "find-links in the same order, beside the default index",
        {"find_links": ("/pip-wheels", "/cli-wheels", "/file-wheels")},
        cli={"find_links": ("/cli-wheels",)},
        files={"find_links": ("/file-wheels",)},
        pip={"find_links": ("/pip-wheels",)},
    ),
    Row(
        "--no-index from the command line: no index at all, not even a given one",
        {"index_urls": (), "no_index": True, "find_links": ("/wheels",)},
        cli={
            "no_index": True,
            "index_url": "https://cli.invalid/simple",
            "find_links": ("/wheels",),
        },
        pip={"extra_index_urls": ("https://pip-x.invalid/simple",)},
    ),
    Row(
        "--no-index from a requirements file",
        {"index_urls": (), "no_index": True},
        files={"no_index": True},
    ),
    Row(
        "no-index from pip's configuration",
        {"index_urls": (), "no_index": True},
        cli={"index_url": "https://cli.invalid/simple"},
        pip={"no_index": True},
    ),
    Row(
        "trusted hosts from every layer, each once, first given first",
        {"trusted_hosts": ("pip.invalid", "cli.invalid", "file.invalid")},
        cli={"trusted_hosts": ("cli.invalid", "pip.invalid")},
        files={"trusted_hosts": ("file.invalid", "cli.invalid")},
        pip={"trusted_hosts": ("pip.invalid",)},
    ),
    Row("--pre from the command line", {"pre": True}, cli={"pre": True}),
    Row("--pre from a file", {"pre": True}, files={"pre": True}),
    Row("pre from pip's configuration", {"pre": True}, pip={"pre": True}),
    Row(
        "--prefer-binary from any layer",
        {"prefer_binary": True},
        pip={"prefer_binary": True},
    ),
    Row(
        "--require-hashes from a file",
        {"require_hashes": True},
        files={"require_hashes": True},
    ),
    Row(
        "require-hashes from pip's configuration",
        {"require_hashes": True},
        pip={"require_hashes": True},
    ),
    Row(
        "pip's only-binary, names canonical",
        {"only_binary": ("demo-lib",)},
        pip={"only_binary": ("Demo_Lib",)},
    ),
    Row(
        "the command line's --no-binary overrides pip's only-binary for that name",
        {"only_binary": ("other",), "no_binary": ("demo",)},
        cli={"format_ops": (("no_binary", "demo"),)},
        pip={"only_binary": ("demo,other",)},
    ),
    Row(
        "a file's --only-binary :all: overrides the command line's --no-binary",
        {"only_binary": (":all:",)},
        cli={"format_ops": (("no_binary", "demo"),)},
        files={"format_ops": (("only_binary", ":all:"),)},
    ),
    Row(
        "a file's :none: clears what came before",
        {"only_binary": (), "no_binary": ()},
        cli={"format_ops": (("only_binary", "demo"),)},
        files={"format_ops": (("only_binary", ":none:"),)},
    ),
    Row(
        "pip's no-binary :all:, then the command line's --only-binary for one name",
        {"only_binary": ("demo",), "no_binary": (":all:",)},
        cli={"format_ops": (("only_binary", "demo"),)},
        pip={"no_binary": (":all:",)},
    ),
    Row(
        "TLS files come from pip's configuration",
        {"cert": "/certs/ca.pem", "client_cert": "/certs/me.pem"},
        pip={"cert": "/certs/ca.pem", "client_cert": "/certs/me.pem"},
    ),
    Row(
        "a known default index is not asked for",
        {"index_urls": ("https://known.invalid/simple",)},
        cli={"default_index": "https://known.invalid/simple"},
    ),
    Row(
        "offline with an index given: no default needed, no error",
        {"index_urls": ("file:///srv/simple",)},
        cli={"offline": True, "index_url": "file:///srv/simple"},
    ),
    Row(
        "offline with --no-index: no default needed",
        {"index_urls": (), "no_index": True},
        cli={"offline": True, "no_index": True},
    ),
    Row(
        "--exclude-newer from the command line",
        {"exclude_newer": JAN},
        cli={"exclude_newer": JAN},
    ),
    Row(
        "pip's configured uploaded-prior-to, a time (one without a zone is UTC)",
        {"exclude_newer": FEB},
        pip={"uploaded_prior_to": "2026-02-01T00:00:00"},
    ),
    Row(
        "pip's uploaded-prior-to as pip's P7D duration: seven days before now, whole seconds",
        {"exclude_newer": dt.datetime(2026, 3, 3, 12, 0, 0, tzinfo=dt.UTC)},
        pip={"uploaded_prior_to": "P7D"},
    ),
    Row(
        "the command line's --exclude-newer over pip's uploaded-prior-to, earlier or later",
        {"exclude_newer": FEB},
        cli={"exclude_newer": FEB},
        pip={"uploaded_prior_to": "2026-01-01"},
    ),
    Row(
        "--exclude-newer-package by canonical name, sorted, with or without a global cut-off",
        {
            "exclude_newer": JAN,
            "exclude_newer_package": (("demo-lib", FEB), ("zeta", None)),
        },
        cli={"exclude_newer_package": {"Zeta": None, "Demo_Lib": FEB}},
        pip={"uploaded_prior_to": "2026-01-01"},
    ),
    Row(
        "--exclude-newer-package alone: no global cut-off",
        {"exclude_newer_package": (("demo", JAN),)},
        cli={"exclude_newer_package": {"demo": JAN}},
    ),
    Row(
        "credentials are kept, for the credential store",
        {"index_urls": ("https://user:secret@cli.invalid/simple",)},
        cli={"index_url": "https://user:secret@cli.invalid/simple"},
    ),
]


def _expected(row: Row) -> PlanSettings:
    values: dict[str, Any] = {"index_urls": (DEFAULT,)}
    values.update(row.expected)
    return PlanSettings(**values)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_settings_follow_pips_precedence(row: Row) -> None:
    asked: list[str] = []

    def default_index() -> str:
        asked.append(DEFAULT)
        return DEFAULT

    got = settings(
        PlanOptions(**row.cli),
        RequirementOptions(**row.files),
        PipSettings(**row.pip),
        default_index=default_index,
        now=NOW,
    )
    assert got == _expected(row)
    # pip's default is asked (a pip start-up) only when it ends up in the settings.
    assert asked == ([DEFAULT] if DEFAULT in got.index_urls else [])


def test_offline_without_an_index_is_an_error_before_pip_is_asked() -> None:
    def default_index() -> str:
        raise AssertionError("pip's default index asked for while offline")

    with pytest.raises(InputError, match=r"^--offline: no index given, and the default index"):
        settings(
            PlanOptions(offline=True),
            RequirementOptions(),
            PipSettings(),
            default_index=default_index,
        )


@pytest.mark.parametrize("value", ["soon", "P7X", "2026-13-01"])
def test_a_bad_uploaded_prior_to_in_pips_configuration_is_one_line(value: str) -> None:
    with pytest.raises(InputError, match=r"^pip's configuration: uploaded-prior-to: neither"):
        settings(
            PlanOptions(),
            RequirementOptions(),
            PipSettings(uploaded_prior_to=value),
            default_index=lambda: DEFAULT,
        )
    # The command line's value stands in for it: pip's is not read at all then.
    given = settings(
        PlanOptions(exclude_newer=JAN),
        RequirementOptions(),
        PipSettings(uploaded_prior_to=value),
        default_index=lambda: DEFAULT,
    )
    assert given.exclude_newer == JAN


def test_pip_reads_uploaded_prior_to_from_its_environment_and_files() -> None:
    config = {"global.uploaded-prior-to": "2026-01-01", "install.uploaded-prior-to": "P3D"}
    assert settings_from({}, config).uploaded_prior_to == "P3D"
    env = {"PIP_UPLOADED_PRIOR_TO": "2026-02-01"}
    assert settings_from(env, config).uploaded_prior_to == "2026-02-01"
    assert settings_from({}, {}).uploaded_prior_to is None


def test_every_setting_has_a_row() -> None:
    named = {key for row in ROWS for key in row.expected}
    # origins only trace values to their sources: test_origins_name_each_layers_source
    assert named == {f.name for f in fields(PlanSettings) if f.compare}


def test_origins_name_each_layers_source() -> None:
    got = settings(
        PlanOptions(index_url="https://cli.invalid/", find_links=["/cli/wheels"]),
        RequirementOptions(
            extra_index_urls=("https://file.invalid/",),
            origins=(("https://file.invalid/", "r.txt:3: --extra-index-url"),),
        ),
        PipSettings(
            trusted_hosts=("pip.invalid",),
            cert="/pip/ca.pem",
            origins=(
                ("pip.invalid", "PIP_TRUSTED_HOST"),
                ("/pip/ca.pem", "pip.conf [global] cert"),
            ),
        ),
        default_index=lambda: DEFAULT,
    )
    assert got.origin("https://cli.invalid/") == "--index-url"
    assert got.origin("/cli/wheels") == "--find-links"
    assert got.origin("https://file.invalid/") == "r.txt:3: --extra-index-url"
    assert got.origin("pip.invalid") == "PIP_TRUSTED_HOST"
    assert got.origin("/pip/ca.pem") == "pip.conf [global] cert"
    assert got.origin("https://nowhere.invalid/") is None


def test_pip_settings_trace_each_value_to_its_variable_or_file() -> None:
    config = {
        "global.index-url": "https://file.invalid/",
        "install.find-links": "/a /b",
        "global.cert": "/ca.pem",
    }
    files = dict.fromkeys(config, "/etc/pip.conf")
    got = settings_from(
        {"PIP_EXTRA_INDEX_URL": "https://x.invalid/ https://y.invalid/"}, config, files
    )
    assert dict(got.origins) == {
        "https://file.invalid/": "/etc/pip.conf [global] index-url",
        "https://x.invalid/": "PIP_EXTRA_INDEX_URL",
        "https://y.invalid/": "PIP_EXTRA_INDEX_URL",
        "/a": "/etc/pip.conf [install] find-links",
        "/b": "/etc/pip.conf [install] find-links",
        "/ca.pem": "/etc/pip.conf [global] cert",
    }
    # A value in pip's :env: section is its PIP_* variable; one without a known file its key.
    assert dict(settings_from({}, {":env:.index-url": "https://e.invalid/"}).origins) == {
        "https://e.invalid/": "PIP_INDEX_URL"
    }
    assert dict(settings_from({}, {"global.trusted-host": "h.invalid"}).origins) == {
        "h.invalid": "[global] trusted-host"
    }


def test_settings_are_immutable_and_their_repr_hides_credentials() -> None:
    got = settings(
        PlanOptions(index_url="https://user:secret@cli.invalid/simple"),
        RequirementOptions(),
        PipSettings(),
        default_index=lambda: DEFAULT,
    )
    with pytest.raises(AttributeError):
        got.pre = True  # type: ignore[misc]
    assert "secret" not in repr(got)
    assert "cli.invalid" in repr(got)
