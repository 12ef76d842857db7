"""The planner's settings: pip's precedence, applied in one place.

A setting can come from four layers: the command line (:class:`~.options.PlanOptions`), the
global options written in requirements and constraints files (``-i``, ``--extra-index-url``,
``--find-links``, ``--pre``, ... merged by :func:`.reqfile.merge`), pip's configuration
(:class:`~fetchplan.pipconfig.PipSettings`: ``PIP_*`` variables over pip's configuration files,
already combined by :func:`fetchplan.pipconfig.settings_from`) and, for the index alone, pip's
default. :func:`settings` combines them the way pip's option parser does, which takes
configuration as the defaults of its options:

* a single value (``index_url``): a requirements file's over the command line's over pip's
  configuration's; pip's default only when none of them gives one (and ``no_index`` is off);
* a list (extra index URLs, find-links, trusted hosts): pip's configured values, then the
  command line's, then the files';
* a flag (``no_index``, ``pre``, ``prefer_binary``, ``require_hashes``): set by any layer;
* the binary formats (``--only-binary``/``--no-binary``): pip's configured values, then the
  command line's, then the files', replayed in that order (a later value overrides an earlier
  one, :func:`.reqfile.merge`).
* the upload-time cut-off: the command line's ``--exclude-newer`` (or ``--uploaded-prior-to``)
  over pip's configured ``uploaded-prior-to`` (a time, or a duration before ``now``);
  requirements files cannot give one (pip takes no such option there). The command line's
  ``--exclude-newer-package`` gives a project its own cut-off (or none) in place of it.

The function is pure: the layers come in as values, pip's default index is asked through the
callable given (only when it is needed), and the result is an immutable :class:`PlanSettings`.
Turning its locations into checked :class:`~.sources.IndexSource` values, which looks at the
file system, is :func:`.sources.locate`'s work. A new setting is a field here and a line in
:func:`settings` (and a field of each layer that can give it).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._age import parse_cutoff
from fetchplan._urls import redact
from fetchplan.errors import InputError
from fetchplan.pipconfig import PipSettings
from fetchplan.planner import reqfile
from fetchplan.planner.options import PlanOptions

__all__ = ["PlanSettings", "settings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanSettings:
    """The settings a plan is made with, every layer applied. URLs are as given, credentials
    included: for the credential store; strip them (:func:`fetchplan._urls.split_credentials`)
    before anything is written."""

    index_urls: tuple[str, ...] = ()
    """The index, then the extra indexes, in order (duplicates kept); none with ``no_index``."""
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    """Each host once, in the order first given."""
    no_index: bool = False
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    """Hash-checking mode asked for; the planner also enters it when a requirement has a
    ``--hash``, as pip does."""
    only_binary: tuple[str, ...] = ()
    """Canonical names (or ``:all:``) that may come as wheels only: pip's format control."""
    no_binary: tuple[str, ...] = ()
    cert: str | None = None
    """A CA bundle to verify servers with (pip's ``cert``)."""
    client_cert: str | None = None
    """A client certificate, key included (pip's ``client-cert``)."""
    exclude_newer: _dt.datetime | None = None
    """Files uploaded after this (aware, whole-second UTC) time, or of unknown upload time,
    are no candidates."""
    exclude_newer_package: tuple[tuple[NormalizedName, _dt.datetime | None], ...] = ()
    """(project, its own cut-off, None for none) in place of ``exclude_newer``, by name."""
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(value, where it was given) for the locations, trusted hosts and TLS files: the
    command line's option, a requirements file's ``FILE:LINE: --option``, pip's variable or
    configuration file and key; the first source of a value given twice."""

    def __repr__(self) -> str:
        # URLs may carry credentials; a repr is what ends up in logs and tracebacks.
        shown = ", ".join(f"{f.name}={redact(repr(getattr(self, f.name)))}" for f in fields(self))
        return f"PlanSettings({shown})"

    def origin(self, value: str) -> str | None:
        """Where ``value`` (a location, host or TLS file of these settings) was given."""
        return next((where for given, where in self.origins if given == value), None)

    def apply_tls(self, session: Any) -> None:
        """Give a requests session the CA bundle and client certificate, when set."""
        if self.cert is not None:
            session.verify = self.cert
        if self.client_cert is not None:
            session.cert = self.client_cert


def settings(
    command_line: PlanOptions,
    files: reqfile.RequirementOptions,
    pip: PipSettings,
    *,
    default_index: Callable[[], str],
    now: _dt.datetime | None = None,
) -> PlanSettings:
    """The settings of ``command_line``, ``files`` (the merged global options of every
    requirements and constraints file) and ``pip`` (empty when isolated), by pip's precedence.

    ``default_index`` is called when no layer names an index and ``no_index`` is off, unless
    ``command_line.default_index`` gives it already. Raises :class:`InputError` when the
    default is needed with ``command_line.offline`` (pip's default index is on the network),
    and when pip's ``uploaded-prior-to`` is neither a time nor a duration. A duration is
    counted back from ``now`` (the current time when None).
    """
    cli = command_line
    no_index = cli.no_index or pip.no_index or files.no_index
    index_urls: tuple[str, ...] = ()
    if not no_index:
        index_url = _last_given(pip.index_url, cli.index_url, files.index_url)
        if index_url is None:
            index_url = _default_index(cli, default_index)
        index_urls = (index_url, *pip.extra_index_urls, *cli.extra_index_urls)
        index_urls += files.extra_index_urls
    trusted = (*pip.trusted_hosts, *cli.trusted_hosts, *files.trusted_hosts)
    formats = _formats(pip, cli, files)
    return PlanSettings(
        index_urls=index_urls,
        find_links=(*pip.find_links, *cli.find_links, *files.find_links),
        trusted_hosts=tuple(dict.fromkeys(trusted)),
        no_index=no_index,
        pre=cli.pre or files.pre or pip.pre,
        prefer_binary=cli.prefer_binary or files.prefer_binary or pip.prefer_binary,
        require_hashes=cli.require_hashes or files.require_hashes or pip.require_hashes,
        only_binary=formats.only_binary,
        no_binary=formats.no_binary,
        cert=pip.cert,
        client_cert=pip.client_cert,
        exclude_newer=_exclude_newer(cli, pip, now),
        exclude_newer_package=tuple(
            sorted(
                (canonicalize_name(name), cut_off)
                for name, cut_off in cli.exclude_newer_package.items()
            )
        ),
        origins=(*_command_line_origins(cli), *files.origins, *pip.origins),
    )


def _command_line_origins(cli: PlanOptions) -> tuple[tuple[str, str], ...]:
    named = [(cli.index_url, "--index-url")] if cli.index_url is not None else []
    named += [(url, "--extra-index-url") for url in cli.extra_index_urls]
    named += [(location, "--find-links") for location in cli.find_links]
    named += [(host, "--trusted-host") for host in cli.trusted_hosts]
    return tuple(named)


def _exclude_newer(
    cli: PlanOptions, pip: PipSettings, now: _dt.datetime | None
) -> _dt.datetime | None:
    if cli.exclude_newer is not None:
        return cli.exclude_newer
    if pip.uploaded_prior_to is None:
        return None
    when = now if now is not None else _dt.datetime.now(_dt.UTC)
    try:
        cut_off = parse_cutoff(pip.uploaded_prior_to, when)
    except ValueError as exc:
        raise InputError(f"pip's configuration: uploaded-prior-to: {exc}") from None
    return cut_off.astimezone(_dt.UTC).replace(microsecond=0)


def _last_given(*values: str | None) -> str | None:
    """The last of ``values`` (weakest first) that is given."""
    given = [value for value in values if value is not None]
    return given[-1] if given else None


def _default_index(cli: PlanOptions, ask: Callable[[], str]) -> str:
    if cli.offline:
        raise InputError(
            "--offline: no index given, and the default index needs the network; give "
            "--index-url file://... or --no-index --find-links DIR"
        )
    return cli.default_index or ask()


def _formats(
    pip: PipSettings, cli: PlanOptions, files: reqfile.RequirementOptions
) -> reqfile.RequirementOptions:
    """pip's format control after pip's configured values, the command line's, then the
    files' (whose ``format_ops`` are already in file order)."""
    configured: list[reqfile.FormatOp] = [("only_binary", v) for v in pip.only_binary]
    configured += [("no_binary", v) for v in pip.no_binary]
    before = reqfile.RequirementOptions(format_ops=(*configured, *cli.format_ops))
    merged = reqfile.merge(
        reqfile.RequirementSet(options=before), reqfile.RequirementSet(options=files)
    )
    return merged.options
