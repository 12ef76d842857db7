"""PEP 740 attestations: each planned file's provenance fetched and verified before the file is.

An index of simple API 1.3 or later names, per file, a provenance URL (recorded in the plan as
``provenance``). :func:`attest_artifacts` fetches each provenance object and verifies every
attestation in it against the file's sha256 from the plan, with ``pypi-attestations`` (the
library the index itself verifies uploads with, on ``sigstore``): the certificate must be one
the public Sigstore instance issued to the bundle's Trusted Publisher, logged in its
transparency log, and the signed statement must name the file and its digest. Verification is
offline, against the Sigstore trust root the library ships (or a newer one a ``sigstore``
client has already fetched into the user cache): nothing but the provenance URLs is requested.

:func:`verify_provenance` is the pure part (bytes in, verified bundles out); each failure is
an :class:`AttestationProblem` naming the file and the reason, and :func:`attest_artifacts`
returns them all rather than stopping at the first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fetchplan._limits import MAX_PAGE_BYTES
from fetchplan._reasons import failure_reason
from fetchplan._urls import redact
from fetchplan.errors import FetchplanError, InputError
from fetchplan.schemas.plan import Artifact, AttestationBundle, Plan

if TYPE_CHECKING:
    import requests

__all__ = [
    "INTEGRITY_TYPE",
    "AttestationFailure",
    "AttestationProblem",
    "attest_artifacts",
    "http_getter",
    "one_line",
    "plan_getter",
    "plan_session",
    "require_library",
    "verify_provenance",
]

log = logging.getLogger(__name__)

INTEGRITY_TYPE = "application/vnd.pypi.integrity.v1+json"
"""The media type of the index's integrity API (PEP 740 provenance objects)."""

MAX_PROVENANCE_BYTES = min(MAX_PAGE_BYTES, 10 * 2**20)


@dataclass(frozen=True, kw_only=True, slots=True)
class AttestationProblem:
    """Why one artifact's attestations could not be verified."""

    project: str
    version: str
    filename: str
    reason: str

    def __str__(self) -> str:
        return f"{self.filename}: attestations: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "reason": self.reason,
        }


class AttestationFailure(FetchplanError):
    """Some planned files' attestations did not verify; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[AttestationProblem]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


def require_library() -> None:
    """Raise :class:`InputError` when ``pypi-attestations`` is not installed."""
    try:
        import pypi_attestations  # noqa: F401
    except ImportError:
        raise InputError(
            "--attestations needs the pypi-attestations library: install fetchplan[attestations]"
        ) from None
    _quiet_sigstore()


class _OfflineNotice(logging.Filter):
    """Drops sigstore's warning that its trust root is not refreshed: offline is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "offline mode" not in record.getMessage()


def _quiet_sigstore() -> None:
    logger = logging.getLogger("sigstore._internal.tuf")
    if not any(isinstance(f, _OfflineNotice) for f in logger.filters):
        logger.addFilter(_OfflineNotice())


def _publisher_fields(publisher: Any) -> dict[str, str | None]:
    fields: dict[str, Any] = publisher.model_dump()
    if "workflow_filepath" in fields:  # GitLab's name for the workflow
        fields["workflow"] = fields.pop("workflow_filepath")
    kind = fields.pop("kind")
    out: dict[str, str | None] = {"kind": str(kind)}
    for key, value in sorted(fields.items()):
        out[key] = None if value is None else str(value)
    return out


def verify_provenance(body: bytes, filename: str, sha256: str) -> tuple[AttestationBundle, ...]:
    """The bundles of the provenance object ``body``, every attestation in each verified for
    the file ``filename`` of digest ``sha256``, offline.

    Raises :class:`ValueError` with the reason when ``body`` is no provenance object, holds no
    attestation, or one attestation fails (its index in the object, the publisher, and what
    ``pypi-attestations`` says).
    """
    from pydantic import ValidationError
    from pypi_attestations import AttestationError, Distribution, Provenance

    _quiet_sigstore()
    try:
        provenance = Provenance.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "(top)"
        raise ValueError(f"not a PEP 740 provenance object: {where}: {first['msg']}") from None
    try:
        dist = Distribution(name=filename, digest=sha256)
    except ValidationError:
        raise ValueError(f"{filename!r} is not a wheel or sdist name to verify") from None
    if not provenance.attestation_bundles:
        raise ValueError("the provenance object holds no attestation bundle")
    bundles: list[AttestationBundle] = []
    for i, bundle in enumerate(provenance.attestation_bundles):
        publisher = AttestationBundle(
            publisher=_publisher_fields(bundle.publisher), predicate_types=()
        )
        if not bundle.attestations:
            raise ValueError(f"bundle {i} ({publisher.identity}) holds no attestation")
        types: list[str] = []
        for j, attestation in enumerate(bundle.attestations):
            try:
                predicate_type, _predicate = attestation.verify(
                    bundle.publisher, dist, offline=True
                )
            except AttestationError as exc:
                raise ValueError(
                    f"attestation {j} of bundle {i} (publisher {publisher.identity}): {exc}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a malformed certificate or log entry
                raise ValueError(
                    f"attestation {j} of bundle {i} (publisher {publisher.identity}): "
                    f"unverifiable: {type(exc).__name__}: {exc}"
                ) from None
            if predicate_type not in types:
                types.append(predicate_type)
        bundles.append(replace(publisher, predicate_types=tuple(types)))
    return tuple(bundles)


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` (which may quote what a server sent) as one printable line: control characters
    escaped, at most ``limit`` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


Getter = Callable[[str], bytes]
"""Fetches a provenance URL's body; raises :class:`ValueError` with the reason it cannot."""


def attest_artifacts(
    artifacts: Iterable[Artifact], get: Getter, *, executor: Executor | None = None
) -> tuple[tuple[Artifact, ...], tuple[AttestationProblem, ...]]:
    """``artifacts`` with ``attestations`` set for each that has a provenance URL (verified
    bundles), and the problems of those that failed (left as they were).

    ``get(url)`` returns the provenance object's bytes or raises :class:`ValueError` with the
    reason; with ``executor``, the objects are fetched in parallel. An artifact without a
    provenance URL is returned unchanged (``attestations`` None: unattested).
    """
    items = tuple(artifacts)

    def one(artifact: Artifact) -> Artifact | AttestationProblem:
        assert artifact.provenance is not None
        try:
            if artifact.sha256 is None:
                raise ValueError("the plan has no sha256 of the file to verify against")
            body = get(artifact.provenance)
            bundles = verify_provenance(body, artifact.filename, artifact.sha256)
        except ValueError as exc:
            return AttestationProblem(
                project=artifact.name,
                version=artifact.version,
                filename=artifact.filename,
                reason=one_line(str(exc)),
            )
        return replace(artifact, attestations=bundles)

    wanted = [a for a in items if a.provenance is not None]
    if executor is not None and len(wanted) > 1:
        done = list(executor.map(one, wanted))
    else:
        done = [one(a) for a in wanted]
    results = dict(zip((id(a) for a in wanted), done, strict=True))
    out: list[Artifact] = []
    problems: list[AttestationProblem] = []
    for artifact in items:
        result = results.get(id(artifact), artifact)
        if isinstance(result, AttestationProblem):
            problems.append(result)
            out.append(artifact)
        else:
            out.append(result)
    return tuple(out), tuple(problems)


def http_getter(
    session: requests.Session, timeout: float, *, trusted_hosts: Iterable[str] = ()
) -> Getter:
    """A getter of provenance objects over ``session`` (its credentials, retries and TLS
    settings; ``file://`` URLs read from disk), each body at most 10 MiB. Plain http is
    refused but to loopback and ``trusted_hosts``, as for index pages."""
    import requests

    from fetchplan._urls import is_secure_or_trusted
    from fetchplan.planner.http import BodyTooLarge, get_whole
    from fetchplan.planner.index import file_url_path

    trusted = frozenset(trusted_hosts) | frozenset(getattr(session, "trusted_hosts", ()))

    def get(url: str) -> bytes:
        if not is_secure_or_trusted(url, trusted):
            raise ValueError(f"provenance {redact(url)}: plain http to an untrusted host")
        if url.startswith("file:"):
            try:
                return file_url_path(url).read_bytes()
            except OSError as exc:
                raise ValueError(f"provenance {url}: {exc.strerror or exc}") from None
        try:
            response = get_whole(
                session,
                url,
                headers={"Accept": f"{INTEGRITY_TYPE}, application/json;q=0.9"},
                timeout=timeout,
                limit=MAX_PROVENANCE_BYTES,
            )
        except BodyTooLarge:
            raise ValueError(
                f"provenance {redact(url)} is larger than {MAX_PROVENANCE_BYTES} bytes"
            ) from None
        except requests.RequestException as exc:
            raise ValueError(f"provenance {redact(url)}: {failure_reason(exc)}") from None
        if response.status_code != 200:
            raise ValueError(
                f"provenance {redact(url)} answered HTTP {response.status_code} "
                f"{response.reason}".rstrip()
            )
        return response.content

    return get


def plan_session(plan: Plan, *, timeout: float = 30.0) -> requests.Session:
    """A session for ``plan``'s provenance URLs when no planner runs (``audit
    --attestations``): credentials of ``~/.netrc`` and the keyring for its indexes, pip's TLS
    settings, the plan's trusted hosts."""
    from fetchplan.auth import CredentialStore
    from fetchplan.pipconfig import read_pip_settings
    from fetchplan.planner.http import HttpPolicy, make_session

    options = plan.inputs.options
    trusted = options.get("trusted_hosts", [])
    session = make_session(
        HttpPolicy(timeout=timeout),
        CredentialStore(index.url for index in plan.indexes),
        trusted_hosts=trusted if isinstance(trusted, list) else (),
    )
    read_pip_settings().apply_tls(session)
    return session


@contextlib.contextmanager
def plan_getter(plan: Plan, *, timeout: float = 30.0) -> Iterator[Getter]:
    """A getter of ``plan``'s provenance URLs over :func:`plan_session`, closed on exit."""
    session = plan_session(plan, timeout=timeout)
    try:
        yield http_getter(session, timeout)
    finally:
        session.close()
