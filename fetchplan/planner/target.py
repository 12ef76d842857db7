"""The environment a plan is for: marker values and compatible wheel tags, best tag first.

By default that is this interpreter (``packaging.markers.default_environment`` and
``packaging.tags.sys_tags``). ``--python-version``, ``--platform``, ``--implementation`` and
``--abi`` describe another machine the way pip's options do, with two deliberate differences:

* markers are evaluated for the described machine, not for this one (pip keeps its own), so a
  plan for ``win_amd64`` picks up ``sys_platform == "win32"`` dependencies;
* ``manylinux_2_Y`` and ``musllinux_1_Y`` platforms also accept wheels for older glibc/musl
  versions (and the legacy ``manylinux2014``/``2010``/``1`` aliases), as an installer on that
  machine would.

Everything here is pure apart from :func:`host_target`, which reads this interpreter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging import tags as pt
from packaging.markers import Marker, default_environment
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from fetchplan.errors import InputError
from fetchplan.schemas.plan import Target as PlanTarget

__all__ = ["TargetEnv", "expand_platform", "host_target", "make_target"]

_IMPLEMENTATIONS: Mapping[str, tuple[str, str]] = {
    # interpreter abbreviation -> (implementation_name, platform_python_implementation)
    "cp": ("cpython", "CPython"),
    "pp": ("pypy", "PyPy"),
    "ip": ("ironpython", "IronPython"),
    "jy": ("jython", "Jython"),
    "gp": ("graalpy", "GraalVM"),
}

_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_MANYLINUX_RE = re.compile(r"manylinux_(\d+)_(\d+)_(.+)")
_MUSLLINUX_RE = re.compile(r"musllinux_(\d+)_(\d+)_(.+)")
_LEGACY_RE = re.compile(r"(manylinux2014|manylinux2010|manylinux1)_(.+)")
_LEGACY_VERSIONS = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_MACOS_RE = re.compile(r"macosx_(\d+)_(\d+)_(.+)")
_PY_VERSION_RE = re.compile(r"\d+(\.\d+){0,2}")
# glibc minor versions below this never had manylinux wheels for any architecture.
_OLDEST_GLIBC_MINOR = 5


@dataclass(frozen=True, slots=True)
class TargetEnv:
    """Marker values and supported tags of one target environment.

    ``tags`` is in priority order: a wheel whose best tag comes earlier is preferred.
    """

    name: str
    markers: Mapping[str, str]
    tags: tuple[pt.Tag, ...]
    _priority: Mapping[pt.Tag, int] = field(init=False, repr=False, compare=False)
    _by_text: dict[str, int | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        priority: dict[pt.Tag, int] = {}
        for i, tag in enumerate(self.tags):
            priority.setdefault(tag, i)
        object.__setattr__(self, "_priority", priority)
        object.__setattr__(self, "_by_text", {})

    @property
    def python_version(self) -> Version:
        """The full Python version, used against Requires-Python."""
        return Version(self.markers["python_full_version"])

    def tag_priority(self, tags: Iterable[pt.Tag]) -> int | None:
        """The best (lowest) priority among ``tags``, or None when none is supported."""
        found = [self._priority[t] for t in tags if t in self._priority]
        return min(found) if found else None

    def wheel_priority(self, tag_text: str) -> int | None:
        """:meth:`tag_priority` of a wheel's compressed tag set as its file name writes it
        (``py3-none-any``, ``cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64``),
        memoised per string: the few tag sets of a project's wheels are parsed once per run."""
        try:
            return self._by_text[tag_text]
        except KeyError:
            # Racing threads compute the same value; the dict keeps whichever lands last.
            priority = self._by_text[tag_text] = self.tag_priority(_parse_tag(tag_text))
            return priority

    def python_matches(self, requires_python: str | SpecifierSet | None) -> bool:
        """Whether the target's Python satisfies ``requires_python`` (unparseable: yes, as pip)."""
        if requires_python is None:
            return True
        try:
            spec = (
                requires_python
                if isinstance(requires_python, SpecifierSet)
                else SpecifierSet(requires_python)
            )
        except ValueError:
            return True
        return spec.contains(self.python_version, prereleases=True)

    def evaluate(self, marker: Marker | None, extras: Iterable[str] = ()) -> bool:
        """Evaluate ``marker`` for the target: true if it holds with no extra or any ``extras``."""
        if marker is None:
            return True
        env = dict(self.markers)
        for extra in ("", *extras):
            env["extra"] = extra
            if marker.evaluate(env):
                return True
        return False

    def to_plan(self) -> PlanTarget:
        return PlanTarget(
            name=self.name,
            markers=dict(sorted(self.markers.items())),
            tags=tuple(str(t) for t in self.tags),
        )


@functools.lru_cache(maxsize=4096)
def _parse_tag(tag_text: str) -> frozenset[pt.Tag]:
    return pt.parse_tag(tag_text)


def expand_platform(platform: str) -> list[str]:
    """The platform tags a machine described by ``platform`` accepts, best first."""
    if match := _MACOS_RE.fullmatch(platform):
        major, minor, arch = int(match[1]), int(match[2]), match[3]
        return list(pt.mac_platforms((major, minor), arch))
    legacy = _LEGACY_RE.fullmatch(platform)
    if legacy is not None:
        glibc: tuple[int, int] | None = _LEGACY_VERSIONS[legacy[1]]
        arch = legacy[2]
    elif match := _MANYLINUX_RE.fullmatch(platform):
        glibc, arch = (int(match[1]), int(match[2])), match[3]
    else:
        glibc = None
    if glibc is not None:
        out: list[str] = []
        major, top = glibc
        for minor in range(top, _OLDEST_GLIBC_MINOR - 1, -1):
            out.append(f"manylinux_{major}_{minor}_{arch}")
            alias = _LEGACY_MANYLINUX.get((major, minor))
            if alias is not None:
                out.append(f"{alias}_{arch}")
        return out
    if match := _MUSLLINUX_RE.fullmatch(platform):
        major, top, arch = int(match[1]), int(match[2]), match[3]
        return [f"musllinux_{major}_{minor}_{arch}" for minor in range(top, -1, -1)]
    return [platform]


def _platform_markers(platform: str) -> dict[str, str]:
    if platform.startswith("win"):
        machine = {"win32": "x86", "win_amd64": "AMD64", "win_arm64": "ARM64"}.get(platform, "")
        return {
            "os_name": "nt",
            "sys_platform": "win32",
            "platform_system": "Windows",
            "platform_machine": machine,
        }
    if match := _MACOS_RE.fullmatch(platform):
        arch = match[3]
        machine = "arm64" if arch in ("arm64", "universal2") else arch
        return {
            "os_name": "posix",
            "sys_platform": "darwin",
            "platform_system": "Darwin",
            "platform_machine": machine,
        }
    for pattern in (_MANYLINUX_RE, _MUSLLINUX_RE):
        if match := pattern.fullmatch(platform):
            arch = match[3]
            break
    else:
        legacy = _LEGACY_RE.fullmatch(platform)
        if legacy is not None:
            arch = legacy[2]
        elif platform.startswith("linux_"):
            arch = platform[len("linux_") :]
        else:
            return {"os_name": "posix", "sys_platform": platform.split("_", 1)[0]}
    return {
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
    }


def _parse_python_version(text: str) -> tuple[int, ...]:
    # pip also accepts "312" for 3.12.
    if text.isdigit() and len(text) > 1:
        return (int(text[0]), int(text[1:]))
    if _PY_VERSION_RE.fullmatch(text) is None:
        raise InputError(f"--python-version {text!r}: expected a version like 3.12 or 3.12.4")
    try:
        Version(text)
    except InvalidVersion as exc:  # pragma: no cover - the regex already excludes these
        raise InputError(f"--python-version {text!r}: {exc}") from exc
    return tuple(int(p) for p in text.split("."))


def host_target() -> TargetEnv:
    """This interpreter, exactly as an installer running here sees it."""
    tags = tuple(pt.sys_tags())
    markers = {k: str(v) for k, v in default_environment().items()}
    return TargetEnv(name=_name(tags[0]), markers=markers, tags=tags)


def _name(tag: pt.Tag) -> str:
    return f"{tag.interpreter}-{tag.platform}"


def make_target(
    *,
    python_version: str | None = None,
    platforms: Sequence[str] = (),
    implementation: str | None = None,
    abis: Sequence[str] = (),
    base: Mapping[str, str] | None = None,
) -> TargetEnv:
    """Describe a target like pip's ``--python-version/--platform/--implementation/--abi``.

    Anything not given is taken from ``base`` markers (default: this interpreter) and this
    interpreter's tags. With nothing given at all, returns :func:`host_target`.
    """
    if python_version is None and not platforms and implementation is None and not abis:
        return host_target()
    markers = (
        dict(base) if base is not None else {k: str(v) for k, v in default_environment().items()}
    )
    impl = _implementation(implementation)
    if python_version is not None:
        version = _parse_python_version(python_version)
    else:
        version = tuple(
            int(p) for p in markers["python_full_version"].split(".")[:3] if p.isdigit()
        )
    major_minor = version[:2]
    _set_python_markers(
        markers,
        impl,
        version,
        implementation_given=implementation is not None or python_version is not None,
    )
    expanded: list[str] | None = None
    if platforms:
        expanded = _expanded_platforms(platforms)
        markers.update(_platform_markers(platforms[0]))
        markers["platform_release"] = ""
        markers["platform_version"] = ""
    interpreter = f"{impl}{''.join(str(p) for p in major_minor)}"
    tags = _tags(impl, interpreter, major_minor, abis, expanded)
    if not tags:
        raise InputError("the target environment supports no wheel tags at all")
    first_platform = platforms[0] if platforms else tags[0].platform
    return TargetEnv(name=f"{interpreter}-{first_platform}", markers=markers, tags=tags)


def _implementation(given: str | None) -> str:
    """The interpreter abbreviation: ``given``, else this interpreter's."""
    impl = given if given is not None else pt.interpreter_name()
    if impl not in _IMPLEMENTATIONS and not re.fullmatch(r"[a-z]{2}", impl):
        raise InputError(
            f"--implementation {impl!r}: expected cp, pp, ip, jy or another 2-letter code"
        )
    return impl


def _set_python_markers(
    markers: dict[str, str],
    impl: str,
    version: tuple[int, ...],
    *,
    implementation_given: bool,
) -> None:
    """The markers of the interpreter ``impl`` at ``version``, into ``markers``."""
    full = ".".join(str(p) for p in (*version, 0, 0)[:3])
    markers["python_version"] = ".".join(str(p) for p in version[:2])
    markers["python_full_version"] = full
    impl_name, impl_display = _IMPLEMENTATIONS.get(impl, (impl, impl))
    markers["implementation_name"] = impl_name
    markers["platform_python_implementation"] = impl_display
    if implementation_given:
        markers["implementation_version"] = (
            full if impl == "cp" else markers.get("implementation_version", full)
        )


def _expanded_platforms(platforms: Sequence[str]) -> list[str]:
    """Every platform tag ``platforms`` stand for, each once, in order."""
    expanded: list[str] = []
    for platform in platforms:
        for item in expand_platform(platform):
            if item not in expanded:
                expanded.append(item)
    return expanded


def _tags(
    impl: str,
    interpreter: str,
    major_minor: tuple[int, ...],
    abis: Sequence[str],
    platforms: list[str] | None,
) -> tuple[pt.Tag, ...]:
    """The wheel tags of the target, most preferred first, each once."""
    abi_list = list(abis) if abis else None
    tag_list: list[pt.Tag] = []
    if impl == "cp":
        tag_list.extend(pt.cpython_tags(major_minor, abis=abi_list, platforms=platforms))
    else:
        tag_list.extend(pt.generic_tags(interpreter, abis=abi_list, platforms=platforms))
    tag_list.extend(pt.compatible_tags(major_minor, interpreter, platforms))
    return tuple(dict.fromkeys(tag_list))
