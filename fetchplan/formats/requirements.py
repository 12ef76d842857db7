"""Hashed requirements files: ``name==version --hash=sha256:...`` that pip installs with
``pip install --require-hashes -r FILE``.

Export pins every installed project of the plan with the hashes of all its files (pip takes
whichever file fits the machine and checks it against the list), adds the plan's indexes as
``--index-url``/``--extra-index-url``/``--find-links`` lines, and a marker on pins that serve
only some of the plan's targets. Before each pin, ``# fetchplan-file: {json}`` comment lines
record each file's URL, size and index, and a ``# fetchplan-target:`` line records each target;
pip ignores them, and import uses them to rebuild the plan without asking an index.

Import reads any requirements file in which every requirement is pinned with ``==`` and
carries hashes. The files of a pin whose hashes no ``fetchplan-file`` line explains are found
by the ``lookup`` the caller passes (:class:`fetchplan.formats.lookup.IndexLookup` searches the
configured indexes by hash); nothing is resolved: the pins are the plan. Without a lookup,
import fails naming those pins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from fetchplan import __version__
from fetchplan._parse import load_json
from fetchplan._urls import split_credentials
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.formats._common import (
    ExportError,
    assemble_plan,
    check_exportable,
    check_url,
    filename_of,
    installable,
    kind_of,
    select_for_target,
    targets_marker,
)
from fetchplan.schemas.plan import SOURCE_TREE_KINDS, Artifact, Dependency, IndexRef, Plan, Target

__all__ = [
    "PIP_HASH_ALGORITHMS",
    "FileLookup",
    "Found",
    "ParsedRequirements",
    "Pin",
    "embedded_targets",
    "from_requirements",
    "parse_requirements",
    "to_requirements",
]

# The algorithms pip's --hash accepts.
PIP_HASH_ALGORITHMS = ("sha256", "sha384", "sha512")
_FILE_NOTE = "# fetchplan-file:"
_TARGET_NOTE = "# fetchplan-target:"
_COMMENT = re.compile(r"(^|\s+)#.*$")


def _note(artifact: Artifact) -> str:
    info: dict[str, Any] = {
        "filename": artifact.filename,
        "url": artifact.url,
        "size": artifact.size,
        "index": artifact.index,
        "hashes": dict(sorted(artifact.hashes.items())),
        "hash_source": artifact.hash_source,
        "requires_python": artifact.requires_python,
        "yanked": artifact.yanked,
        "yanked_reason": artifact.yanked_reason,
        "upload_time": artifact.upload_time,
        "provenance": artifact.provenance,
        "requested": artifact.requested,
        "dependencies": [d.requirement for d in artifact.dependencies],
        "destination": artifact.destination,
    }
    if artifact.targets is not None:
        info["targets"] = list(artifact.targets)
    if artifact.direct:
        info["direct"] = True
    if artifact.path is not None:
        info["path"] = artifact.path
    return f"{_FILE_NOTE} {json.dumps(info, separators=(',', ':'), ensure_ascii=False)}"


def _direct_pin(artifact: Artifact, members: Sequence[Artifact], extras: Sequence[str]) -> str:
    """``name[extras] @ URL`` for a direct archive; pip cannot check hashes of the others."""
    if artifact.kind in SOURCE_TREE_KINDS:
        what = "a VCS checkout" if artifact.kind == "vcs" else "a local directory"
        raise ExportError(
            f"{artifact.filename}: {artifact.name} is {what}, which a hashed requirements file "
            "cannot hold (pip checks no hash of a source tree)"
        )
    if len(members) > 1:
        raise ExportError(
            f"{members[1].filename}: {artifact.name} is a direct reference with several files"
        )
    named = f"{artifact.name}[{','.join(extras)}]" if extras else artifact.name
    url = check_url(artifact.url, artifact.filename)
    if artifact.subdirectory is not None:
        url += f"#subdirectory={artifact.subdirectory}"
    return f"{named} @ {url}"


def _install_advice(plan: Plan) -> list[str]:
    """How pip installs the file: a plan made with --no-deps or --override is not what pip's
    resolver would choose again from the pins' metadata, so pip must take the pins as they
    are (``--no-deps``)."""
    why = []
    if plan.inputs.options.get("no_deps"):
        why.append("--no-deps")
    if plan.inputs.overrides:
        why.append("--override " + ", ".join(plan.inputs.overrides))
    if not why:
        return ["# Install with: pip install --require-hashes -r THIS_FILE"]
    return [
        "# Install with: pip install --no-deps --require-hashes -r THIS_FILE",
        f"# (planned with {'; '.join(why)}: pip must not resolve the pins again)",
    ]


def to_requirements(plan: Plan) -> str:
    """``plan`` as a hashed requirements file (text with a final newline).

    Raises :class:`ExportError` for an artifact with no hash pip accepts (sha256, sha384 or
    sha512). Build dependencies are left out: pip installs those itself when building.
    """
    lines = [*_header(plan), *_index_options(plan)]
    groups: dict[tuple[str, str], list[Artifact]] = {}
    for artifact in installable(plan):
        check_exportable(artifact)
        groups.setdefault((artifact.name, artifact.version), []).append(artifact)
    for (name, version), members in groups.items():
        lines.append("")
        lines.extend(_pin_lines(plan, name, version, members))
    return "\n".join(lines) + "\n"


def _header(plan: Plan) -> list[str]:
    """The opening comments: who wrote the file, how to install it, and the plan's targets."""
    lines = [
        f"# Written by fetchplan {__version__} from a plan created {plan.created}.",
        *_install_advice(plan),
        "# The fetchplan-* comments let `fetchplan import` rebuild the plan; pip ignores them.",
    ]
    for target in plan.targets:
        body = {"name": target.name, "markers": dict(target.markers)}
        lines.append(f"{_TARGET_NOTE} {json.dumps(body, separators=(',', ':'))}")
    return lines


def _index_options(plan: Plan) -> list[str]:
    """pip's index options: the first index is ``--index-url``, later ones are extra."""
    lines = []
    first_index = True
    for index in plan.indexes:
        url = check_url(index.url, "indexes")
        if index.kind == "find-links":
            lines.append(f"--find-links {url}")
        elif first_index:
            lines.append(f"--index-url {url}")
            first_index = False
        else:
            lines.append(f"--extra-index-url {url}")
    return lines


def _pip_hashes(members: Sequence[Artifact]) -> list[str]:
    """Every ``alg:digest`` pip accepts of the files, each once, in order."""
    hashes: list[str] = []
    for member in members:
        usable = [
            f"{alg}:{member.hashes[alg]}" for alg in PIP_HASH_ALGORITHMS if alg in member.hashes
        ]
        if not usable:
            raise ExportError(
                f"{member.filename}: has no sha256, sha384 or sha512 hash for pip to check"
            )
        hashes.extend(h for h in usable if h not in hashes)
    return hashes


def _pin_lines(plan: Plan, name: str, version: str, members: list[Artifact]) -> list[str]:
    """The notes of a project version's files, then its pin with every hash."""
    all_names = [t.name for t in plan.targets]
    served: set[str] = set()
    for member in members:
        served.update(all_names if member.targets is None else member.targets)
    hashes = _pip_hashes(members)
    extras = sorted({e for m in members for e in m.extras})
    pin = f"{name}[{','.join(extras)}]=={version}" if extras else f"{name}=={version}"
    if members[0].direct:
        pin = _direct_pin(members[0], members, extras)
    marker = targets_marker(plan.targets, served, members[0].filename)
    if marker is not None:
        pin += f" ; {marker}"
    return [
        *(_note(m) for m in members),
        " \\\n".join([pin, *(f"    --hash={h}" for h in hashes)]),
    ]


@dataclass(frozen=True, kw_only=True, slots=True)
class Pin:
    """One pinned requirement of a hashed requirements file."""

    name: str
    version: str
    extras: tuple[str, ...] = ()
    marker: str | None = None
    hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Digests by algorithm, as listed in the ``--hash`` options."""
    line: int = 0
    url: str | None = None
    """A direct reference's URL (``name @ URL``)."""

    def allows(self, hashes: Mapping[str, str]) -> bool:
        """True when one of ``hashes`` (algorithm -> digest) is among the pin's."""
        return any(digest in self.hashes.get(alg, ()) for alg, digest in hashes.items())


@dataclass(frozen=True, slots=True)
class Found:
    """What a lookup found for one pin: files whose hashes the pin lists, or why there are
    none (one line naming the project, version and where it looked)."""

    files: tuple[Artifact, ...] = ()
    problem: str | None = None


FileLookup = Callable[[Sequence[Pin], Target], Sequence[Found]]
"""Finds the files of ``pins`` by hash for a target: one :class:`Found` per pin, in order.

It may narrow a pin's files to the one the target would install; it raises
:class:`~fetchplan.errors.FetchplanError` only for failures that are not about one pin (an
index that does not answer)."""


@dataclass(frozen=True, slots=True)
class ParsedRequirements:
    """What a requirements file says: pins, fetchplan notes, and index locations."""

    pins: list[Pin]
    notes: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    index_urls: list[str]
    find_links: list[str]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.rstrip().endswith("\\") and not raw.lstrip().startswith("#"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        out.append((start, buffer + raw))
        buffer = ""
    if buffer:
        out.append((start, buffer))
    return out


def parse_requirements(text: str, filename: str) -> ParsedRequirements:
    """Parse a hashed requirements file; every problem is reported with its line number."""
    problems: list[FieldProblem] = []
    parsed = ParsedRequirements([], [], [], [], [])
    for number, raw in _logical_lines(text):
        stripped = raw.strip()
        where = f"line {number}"
        for prefix, sink in ((_FILE_NOTE, parsed.notes), (_TARGET_NOTE, parsed.targets)):
            if stripped.startswith(prefix):
                try:
                    value = load_json(stripped[len(prefix) :], where)
                except FileFormatError as exc:
                    problems.append(
                        FieldProblem(where, f"bad {prefix[2:-1]} note: {exc.problems[0].message}")
                    )
                    continue
                if isinstance(value, dict):
                    sink.append(value)
                else:
                    problems.append(FieldProblem(where, f"bad {prefix[2:-1]} note"))
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            _option(line, where, parsed, problems)
            continue
        pin = _pin(line, number, problems)
        if pin is not None:
            parsed.pins.append(pin)
    if problems:
        raise FileFormatError(filename, problems)
    return parsed


def _option(
    line: str, where: str, parsed: ParsedRequirements, problems: list[FieldProblem]
) -> None:
    option, _, value = line.replace("=", " ", 1).partition(" ")
    value = value.strip()
    if option in {"-i", "--index-url", "--extra-index-url"} and value:
        parsed.index_urls.append(value)
    elif option in {"-f", "--find-links"} and value:
        parsed.find_links.append(value)
    elif option in {"-r", "--requirement", "-c", "--constraint", "-e", "--editable"}:
        problems.append(FieldProblem(where, f"{option} is not supported in an imported file"))
    # Other global options (--require-hashes, --pre, --no-binary...) do not change the files.


def _pin(line: str, number: int, problems: list[FieldProblem]) -> Pin | None:
    where = f"line {number}"
    tokens = line.split()
    first_option = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    spec = " ".join(tokens[:first_option])
    options = tokens[first_option:]
    hashes: dict[str, list[str]] = {}
    i = 0
    while i < len(options):
        word = options[i]
        if word == "--hash" and i + 1 < len(options):
            word = f"--hash={options[i + 1]}"
            i += 1
        i += 1
        if not word.startswith("--hash="):
            problems.append(FieldProblem(where, f"unsupported option {word}"))
            continue
        algorithm, _, digest = word[len("--hash=") :].partition(":")
        if not digest:
            problems.append(FieldProblem(where, f"bad hash {word}"))
            continue
        hashes.setdefault(algorithm.lower(), []).append(digest.lower())
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        problems.append(FieldProblem(where, str(exc).splitlines()[0]))
        return None
    specifiers = list(req.specifier)
    if req.url is not None and hashes:
        # A direct archive: its version is its file name's.
        kind = kind_of(filename_of(req.url))
        if kind is None:
            problems.append(FieldProblem(where, f"{req.name}: not a wheel or sdist URL"))
            return None
        version = _archive_version(filename_of(req.url))
        return Pin(
            name=canonicalize_name(req.name),
            version=version,
            extras=tuple(sorted(req.extras)),
            marker=None if req.marker is None else str(req.marker),
            hashes={alg: tuple(d) for alg, d in hashes.items()},
            line=number,
            url=req.url,
        )
    if (
        len(specifiers) != 1
        or specifiers[0].operator not in {"==", "==="}
        or "*" in str(specifiers[0].version)
    ):
        problems.append(FieldProblem(where, f"{req.name} is not pinned with =="))
        return None
    if not hashes:
        problems.append(FieldProblem(where, f"{req.name} has no --hash"))
        return None
    return Pin(
        name=canonicalize_name(req.name),
        version=specifiers[0].version,
        extras=tuple(sorted(req.extras)),
        marker=None if req.marker is None else str(req.marker),
        hashes={alg: tuple(d) for alg, d in hashes.items()},
        line=number,
    )


def embedded_targets(text: str, filename: str, tags: Sequence[str]) -> tuple[Target, ...]:
    """The targets a fetchplan-written file records, given ``tags`` (the file has none)."""
    parsed = parse_requirements(text, filename)
    found = []
    for note in parsed.targets:
        markers = note.get("markers")
        if isinstance(note.get("name"), str) and isinstance(markers, dict):
            found.append(
                Target(
                    name=note["name"],
                    markers={str(k): str(v) for k, v in markers.items()},
                    tags=tuple(tags),
                )
            )
    return tuple(found)


def _from_note(note: Mapping[str, Any], pin: Pin) -> Artifact:
    filename = str(note["filename"])
    return Artifact(
        name=canonicalize_name(pin.name),
        version=pin.version,
        kind="wheel" if filename.endswith(".whl") else "sdist",
        filename=filename,
        url=str(note["url"]),
        index=str(note["index"]),
        hashes=dict(note["hashes"]),
        hash_source=note.get("hash_source", "requirements"),
        size=note.get("size"),
        requires_python=note.get("requires_python"),
        yanked=bool(note.get("yanked", False)),
        yanked_reason=note.get("yanked_reason"),
        upload_time=note.get("upload_time"),
        provenance=note.get("provenance"),
        dependencies=tuple(
            Dependency(name=canonicalize_name(Requirement(r).name), requirement=r)
            for r in note.get("dependencies", ())
        ),
        requested=bool(note.get("requested", True)),
        extras=pin.extras,
        destination=str(note.get("destination", filename)),
        targets=tuple(note["targets"]) if isinstance(note.get("targets"), list) else None,
        direct=bool(note.get("direct", False)),
        path=note.get("path") if isinstance(note.get("path"), str) else None,
    )


def _from_direct_pin(pin: Pin) -> Artifact:
    """A ``name @ URL --hash=...`` line without a fetchplan note: the archive it names."""
    assert pin.url is not None
    url, _ = split_credentials(pin.url.split("#", 1)[0])
    filename = filename_of(url)
    hashes = {alg: digests[0] for alg, digests in pin.hashes.items()}
    return Artifact(
        name=canonicalize_name(pin.name),
        version=pin.version,
        kind=kind_of(filename) or "sdist",
        filename=filename,
        url=url,
        index=url,
        hashes=hashes,
        hash_source="requirements",
        size=None,
        requested=True,
        extras=pin.extras,
        destination=filename,
        direct=True,
    )


def _archive_version(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[1])
    return str(parse_sdist_filename(filename)[1])


def from_requirements(
    text: str,
    filename: str,
    *,
    target: Target,
    created: str,
    destination: str = "wheels",
    lookup: FileLookup | None = None,
    base_dir: Path | None = None,
) -> Plan:
    """Build a plan for ``target`` from a hashed requirements file.

    Pins whose marker is false for the target are skipped. Each pin's files come from the
    file's ``fetchplan-file`` notes, else from ``lookup`` (called once, with every such pin);
    one file per pin is kept (the best wheel for the target's tags, else the sdist). Every
    file must match one of its pin's hashes. Raises :class:`FileFormatError` naming each line
    that cannot be resolved. Relative find-links paths are taken from ``base_dir`` (the
    file's directory), as pip takes them.
    """
    parsed = parse_requirements(text, filename)
    problems: list[FieldProblem] = []
    wanted = [pin for pin in parsed.pins if _applies(pin, target)]
    from_notes = [_noted_files(pin, parsed.notes, problems) for pin in wanted]
    # A direct pin (name @ URL --hash=...) without a note names its archive itself.
    from_notes = [
        found or ([_from_direct_pin(pin)] if pin.url is not None else [])
        for pin, found in zip(wanted, from_notes, strict=True)
    ]
    looked_up = _look_up(
        [pin for pin, found in zip(wanted, from_notes, strict=True) if not found], target, lookup
    )
    artifacts: list[Artifact] = []
    for pin, noted in zip(wanted, from_notes, strict=True):
        candidates = noted or _looked_up_files(pin, looked_up.get(id(pin)), problems)
        if candidates is None:
            continue
        if not candidates:
            problems.append(
                FieldProblem(f"line {pin.line}", f"no file found for {pin.name}=={pin.version}")
            )
            continue
        artifacts.extend(_for_target(candidates, target))
    if problems:
        raise FileFormatError(filename, problems)
    return assemble_plan(
        artifacts,
        target,
        created=created,
        destination=destination,
        indexes=_index_refs(parsed, base_dir),
    )


def _look_up(pins: Sequence[Pin], target: Target, lookup: FileLookup | None) -> dict[int, Found]:
    """What ``lookup`` finds for ``pins`` (the pins no note explains), by ``id`` of the pin."""
    if not pins or lookup is None:
        return {}
    return {id(pin): found for pin, found in zip(pins, lookup(pins, target), strict=True)}


def _for_target(candidates: Sequence[Artifact], target: Target) -> list[Artifact]:
    """The file of a pin ``target`` installs: among those serving it (or all, when the notes
    name other targets only), the best wheel for its tags, else the sdist."""
    served = [a for a in candidates if a.targets is None or target.name in a.targets]
    return select_for_target([replace(a, targets=None) for a in served or candidates], target)


def _applies(pin: Pin, target: Target) -> bool:
    """False for a pin whose marker is false for ``target``."""
    return pin.marker is None or Marker(pin.marker).evaluate({**target.markers, "extra": ""})


def _noted_files(
    pin: Pin, notes: Sequence[Mapping[str, Any]], problems: list[FieldProblem]
) -> list[Artifact]:
    """The files of ``pin`` that ``fetchplan-file`` notes describe (by the pin's hashes); a
    bad note is a problem of the pin's line."""
    found: list[Artifact] = []
    for note in notes:
        hashes = note.get("hashes")
        if isinstance(hashes, dict) and pin.allows(hashes):
            try:
                found.append(_from_note(note, pin))
            except (KeyError, TypeError, ValueError, InvalidRequirement) as exc:
                problems.append(FieldProblem(f"line {pin.line}", f"bad fetchplan-file note: {exc}"))
    return found


def _looked_up_files(
    pin: Pin, found: Found | None, problems: list[FieldProblem]
) -> list[Artifact] | None:
    """The files ``lookup`` found for ``pin`` (``found``; None when there was no lookup), or
    None with the reason added to ``problems``."""
    where = f"line {pin.line}"
    if found is None:
        problems.append(
            FieldProblem(
                where,
                f"{pin.name}=={pin.version}: no fetchplan-file note names its files, "
                "and finding them by hash on an index is not available here",
            )
        )
        return None
    if found.problem is not None:
        problems.append(FieldProblem(where, found.problem))
        return None
    strangers = [a.filename for a in found.files if not pin.allows(a.hashes)]
    if strangers:
        problems.append(FieldProblem(where, f"files not matching the pin's hashes: {strangers}"))
        return None
    return [replace(a, requested=True, extras=pin.extras) for a in found.files]


def _index_refs(parsed: ParsedRequirements, base_dir: Path | None) -> list[IndexRef]:
    return [
        *(IndexRef(url=_location_url(url, base_dir)) for url in parsed.index_urls),
        *(
            IndexRef(url=_location_url(url, base_dir), kind="find-links")
            for url in parsed.find_links
        ),
    ]


def _location_url(value: str, base_dir: Path | None) -> str:
    """An index or find-links value as the plan records it: a URL without credentials; a
    path (``--find-links ./wheels``, as pip-compile writes) is taken relative to the file."""
    if "://" in value:
        return split_credentials(value)[0]
    path = Path(value)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return path.resolve().as_uri()
