"""Changing an environment as one journaled transaction, and finishing one a kill interrupted.

An install changes the environment in two kinds of step, both renames within one file system:

* ``aside``: an existing file or directory (a file of a version being removed, its
  ``.dist-info``, a directory holding nothing but such files, a file a new wheel
  overwrites) is renamed beside itself, to ``<name>.fetchplan-<id>.old``. Nothing is deleted
  before the commit.
* ``in``: a staged file, or a staged directory the environment does not have yet, is moved
  to its final place (``os.replace``; across file systems, a copy into place then the removal
  of the staged copy).

Before the first step, the whole list is written to ``<prefix>/.fetchplan/journal.json``
(``install-journal.schema.json``; fsynced, then its directory). Every aside runs, then every
move in; then the commit marker ``journal.committed`` (the transaction's id) is written and
fsynced, and only then are the set-aside copies, the emptied directories and the staging
deleted, and the journal and the marker removed.

The rule, applied by :func:`recover` (which every install or run of the environment calls
under its lock before anything else): a journal without its commit marker is rolled back,
one with it rolled forward. Rolling back removes whatever was moved in and renames every
set-aside copy back, so the environment is as it was before the install; rolling forward
redoes any move in whose source is still there, then deletes what was set aside. Each step's
state is told by the file system alone (a rename is atomic; the set-aside names are unique to
the transaction), so both directions can themselves be interrupted and run again. Staging
directories (``.fetchplan-staging-*``) left in the prefix are removed too: only a holder of
the environment's lock writes them, and it is gone.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fetchplan._fs import atomic_write_bytes
from fetchplan._lock import hold_lock
from fetchplan.errors import FetchplanError
from fetchplan.install.environment import (
    InstalledDist,
    is_inside,
    prune,
    real_inside,
    record_files,
)
from fetchplan.install.errors import EnvironmentBusy, InstallError
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.protect import STAGING_PREFIX, STATE_DIR
from fetchplan.install.staging import StagedWheel
from fetchplan.schemas import dump_document, load_document

__all__ = [
    "COMMITTED",
    "JOURNAL",
    "STAGING_PREFIX",
    "Recovered",
    "Transaction",
    "environment_lock",
    "recover",
]

log = logging.getLogger(__name__)

JOURNAL = "journal.json"
_FORMAT = 1

COMMITTED = "journal.committed"


@dataclass(frozen=True, slots=True)
class _Aside:
    path: str
    backup: str
    tree: bool


@dataclass(frozen=True, slots=True)
class _In:
    src: str
    dst: str
    tree: bool


@dataclass(frozen=True, slots=True)
class Recovered:
    """What :func:`recover` found and did: the transaction it rolled back or forward (None
    when there was none) and how many staging directories it removed."""

    action: Literal["rolled back", "rolled forward"] | None
    staging: int = 0


def _lexists(path: str) -> bool:
    return os.path.lexists(path)


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _remove(path: str) -> None:
    """Delete ``path`` (a file, a link or a whole directory) if it is there."""
    if _is_real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # noqa: PTH108


def _move(src: str, dst: str, *, tree: bool, part: str) -> None:
    """Move ``src`` to ``dst`` so that running it again after an interruption finishes it.

    Within a file system this is one rename. Across file systems the file is copied to
    ``part`` and renamed over ``dst``, and a directory merged into ``dst`` file by file,
    before ``src`` is deleted: while ``src`` exists, the move is not done.
    """
    try:
        if tree:
            os.rename(src, dst)  # noqa: PTH104
        else:
            os.replace(src, dst)
        return
    except OSError as exc:
        # A directory merged by an interrupted cross-device move is merged again.
        merge = tree and exc.errno in (errno.ENOTEMPTY, errno.EEXIST)
        if exc.errno != errno.EXDEV and not merge:
            raise
    if tree:
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(src)
    else:
        shutil.copy2(src, part, follow_symlinks=False)
        os.replace(part, dst)
        os.unlink(src)  # noqa: PTH108


@dataclass
class _Journal:
    """The steps of one transaction, as written to and read from ``journal.json``."""

    id: str
    asides: list[_Aside] = field(default_factory=list)
    made: list[list[str]] = field(default_factory=list)
    """Directories to make, as [highest new directory, deepest]: only where staging does not
    mirror the final layout."""
    ins: list[_In] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    staging: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        """Write the journal to ``path`` (atomically, fsynced, its directory too)."""
        document = {
            "format": _FORMAT,
            "id": self.id,
            "aside": [{"path": a.path, "backup": a.backup, "tree": a.tree} for a in self.asides],
            "made": [{"top": top, "deepest": deepest} for top, deepest in self.made],
            "in": [{"src": i.src, "dst": i.dst, "tree": i.tree} for i in self.ins],
            "prune": self.prune,
            "staging": self.staging,
        }
        try:
            dump_document(path, document, "install-journal")
        except FetchplanError as exc:
            raise InstallError(str(exc)) from exc

    @classmethod
    def read(cls, path: Path, allowed: tuple[str, ...]) -> _Journal:
        """Read ``path`` (checked against its schema); every path it names must lie under
        one of ``allowed``."""
        document = load_document(path, "install-journal")

        def inside(where: str, item: str) -> str:
            if not any(is_inside(item, root) for root in allowed):
                raise InstallError(
                    f"{path}: {where}: {item!r} is not inside the environment; the "
                    "environment needs repair by hand (or a new one)"
                )
            return item

        asides = [
            _Aside(
                inside(f"aside[{n}].path", row["path"]),
                inside(f"aside[{n}].backup", row["backup"]),
                row["tree"],
            )
            for n, row in enumerate(document["aside"])
        ]
        made = [
            [inside(f"made[{n}].top", row["top"]), inside(f"made[{n}].deepest", row["deepest"])]
            for n, row in enumerate(document["made"])
        ]
        ins = [
            _In(inside(f"in[{n}].src", row["src"]), inside(f"in[{n}].dst", row["dst"]), row["tree"])
            for n, row in enumerate(document["in"])
        ]
        return cls(
            id=document["id"],
            asides=asides,
            made=made,
            ins=ins,
            prune=[inside(f"prune[{n}]", p) for n, p in enumerate(document["prune"])],
            staging=[inside(f"staging[{n}]", p) for n, p in enumerate(document["staging"])],
        )

    def part(self, dst: str) -> str:
        return f"{dst}.fetchplan-{self.id}.part"

    # -- the two directions ----------------------------------------------------------------

    def roll_forward(self) -> None:
        """Finish a committed transaction: any move in not done, then the deletions."""
        for step in self.ins:
            if _lexists(step.src):
                _move(step.src, step.dst, tree=step.tree, part=self.part(step.dst))
        self.clean_up(committed=True)

    def roll_back(self) -> None:
        """Undo every step that ran, newest first: the environment is as it was before."""
        occupied = {a.path: a for a in self.asides}
        for step in reversed(self.ins):
            _remove(self.part(step.dst))
            occupant = occupied.get(step.dst)
            # What is at dst is ours unless the file it replaces was never set aside.
            if _lexists(step.dst) and (occupant is None or _lexists(occupant.backup)):
                _remove(step.dst)
        for top, _ in reversed(self.made):
            _remove(top)
        for aside in reversed(self.asides):
            if _lexists(aside.backup):
                if _lexists(aside.path):
                    _remove(aside.path)
                os.rename(aside.backup, aside.path)  # noqa: PTH104
        self.clean_up(committed=False)

    def clean_up(self, *, committed: bool) -> None:
        """Delete what the transaction no longer needs: the set-aside copies once committed,
        and its staging either way."""
        if committed:
            for aside in self.asides:
                _remove(aside.backup)
        for directory in self.staging:
            shutil.rmtree(directory, ignore_errors=True)


def _state_dir(target: TargetInterpreter) -> Path:
    return Path(target.prefix, STATE_DIR)


def _allowed_roots(target: TargetInterpreter) -> tuple[str, ...]:
    """The directories an install writes in: the prefix and the install scheme's roots."""
    scheme = target.scheme("-")
    headers = os.path.dirname(scheme.pop("headers"))  # noqa: PTH120
    return (target.prefix, headers, *scheme.values())


@contextlib.contextmanager
def environment_lock(
    target: TargetInterpreter,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Recovered | None]:
    """Hold the lock of ``target``'s environment (``<prefix>/.fetchplan/lock``) for the
    ``with`` block, first finishing any transaction a killed install left (:func:`recover`).

    When another fetchplan holds it: raise :class:`EnvironmentBusy` (exit status 75) if not
    ``wait``, else call ``on_wait`` with a line naming the holder and wait. Yields what
    :func:`recover` did.
    """
    prefix = target.prefix
    state = _state_dir(target)
    try:
        state.mkdir(exist_ok=True)
    except OSError as exc:
        raise InstallError(f"{state}: cannot lock the environment: {exc.strerror}") from exc
    with hold_lock(
        state,
        wait=wait,
        on_wait=on_wait,
        busy=lambda holder: EnvironmentBusy(
            f"{prefix}: another fetchplan ({holder}) is installing into it (--no-wait was given)"
        ),
        waiting=lambda holder: f"waiting for another fetchplan ({holder}) to finish with {prefix}",
    ):
        yield recover(target)


def recover(target: TargetInterpreter) -> Recovered | None:
    """Finish the transaction a killed install left in ``target``'s environment, if any,
    and remove staging directories left in its prefix. Call with the environment locked.

    A ``prepared`` journal is rolled back, a ``committed`` one rolled forward (see the module
    docstring). Returns what was done, or None when there was nothing to do.
    """
    state = _state_dir(target)
    path, marker = state / JOURNAL, state / COMMITTED
    action: Literal["rolled back", "rolled forward"] | None = None
    if _lexists(str(path)):
        journal = _Journal.read(path, _allowed_roots(target))
        try:
            committed = marker.read_text("ascii").strip() == journal.id
        except (OSError, UnicodeDecodeError):
            committed = False
        try:
            if committed:
                journal.roll_forward()
                prune((Path(p) for p in journal.prune), target)
                action = "rolled forward"
            else:
                journal.roll_back()
                action = "rolled back"
            path.unlink()
        except OSError as exc:
            raise InstallError(
                f"{path}: cannot finish the interrupted install: {exc}; the environment "
                "needs repair by hand (or a new one)"
            ) from exc
        log.warning("%s: an interrupted install was %s", target.prefix, action)
    marker.unlink(missing_ok=True)
    staging = 0
    for leftover in Path(target.prefix).glob(f"{STAGING_PREFIX}*"):
        log.info("removing staging left by an interrupted install: %s", leftover)
        _remove(str(leftover))
        staging += 1
    for pattern in (f".{JOURNAL}.*", f".{COMMITTED}.*"):
        for temp in state.glob(pattern):
            temp.unlink(missing_ok=True)
    return Recovered(action, staging) if action is not None or staging else None


class _Owned:
    """Which directories hold nothing but files of one distribution being removed: those
    are set aside whole (one rename instead of one per file), the new version's directory
    then moving in whole too."""

    def __init__(self, files: Iterable[str], keep: set[str]) -> None:
        self._names: dict[str, set[str]] = {}
        for path in files:
            parent, name = os.path.split(path)
            self._names.setdefault(parent, set()).add(name)
        # Directories with some of the files below them, short of the kept ones.
        self._holds: set[str] = set()
        for parent in self._names:
            directory = parent
            while directory not in self._holds and directory not in keep:
                self._holds.add(directory)
                up = os.path.dirname(directory)  # noqa: PTH120
                if up == directory:
                    break
                directory = up
        self._whole: dict[str, bool] = {}
        self._tops: dict[str, str | None] = {}

    def _wholly(self, directory: str) -> bool:
        found = self._whole.get(directory)
        if found is None:
            found = True
            names = self._names.get(directory, set())
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            ok = entry.path in self._holds and self._wholly(entry.path)
                        else:
                            ok = entry.name in names
                        if not ok:
                            found = False
                            break
            except OSError:
                found = False
            self._whole[directory] = found
        return found

    def top(self, path: str) -> str | None:
        """The highest directory above ``path`` holding only files being removed, if any."""
        parent = os.path.dirname(path)  # noqa: PTH120
        if parent in self._tops:
            return self._tops[parent]
        top = None
        directory = parent
        while directory in self._holds and self._wholly(directory):
            top = directory
            directory = os.path.dirname(directory)  # noqa: PTH120
        self._tops[parent] = top
        return top


class Transaction:
    """One change of an environment: distributions removed, staged wheels moved in.

    :meth:`remove` and :meth:`add` only plan (they read the environment, change nothing);
    :meth:`commit` writes the journal and carries the plan out. Hold the environment's lock
    (:func:`environment_lock`) from before the environment is read until after commit.
    """

    def __init__(self, target: TargetInterpreter, *, staging: Iterable[Path] = ()) -> None:
        self.target = target
        self._prefix_real = os.path.realpath(target.prefix)
        self._journal = _Journal(id=secrets.token_hex(6), staging=[str(p) for p in staging])
        self._set_aside: dict[str, _Aside] = {}
        self._gone: set[str] = set()  # directories set aside whole
        self._made: set[str] = set()  # directories the moves in will create
        self._moved: set[str] = set()  # destinations of moves in
        self._dirs: dict[str, bool] = {}
        self._gone_below: dict[str, bool] = {}
        self._prune: set[Path] = set()
        # Never set aside whole: the scheme directories, the prefix, and what holds them.
        self._keep: set[str] = set()
        for root in (target.prefix, *target.paths.values()):
            directory = os.path.abspath(root)  # noqa: PTH100
            while directory not in self._keep:
                self._keep.add(directory)
                directory = os.path.dirname(directory)  # noqa: PTH120

    # -- planning --------------------------------------------------------------------------

    def _under_gone(self, path: str) -> bool:
        """Whether a directory above ``path`` is set aside whole."""
        parent = os.path.dirname(path)  # noqa: PTH120
        found = self._gone_below.get(parent)
        if found is None:
            found = parent in self._gone or (
                parent != os.path.dirname(parent) and self._under_gone(parent)  # noqa: PTH120
            )
            self._gone_below[parent] = found
        return found

    def _dir_exists(self, path: str) -> bool:
        """Whether directory ``path`` will exist when the moves in run."""
        if path in self._made:
            return True
        if path in self._gone or self._under_gone(path):
            return False
        found = self._dirs.get(path)
        if found is None:
            found = self._dirs[path] = os.path.isdir(path)  # noqa: PTH112
        return found

    def _aside(self, path: str, *, tree: bool) -> None:
        if path in self._set_aside or self._under_gone(path) or path in self._moved:
            return
        backup = f"{path}.fetchplan-{self._journal.id}.old"
        step = _Aside(path, backup, tree)
        self._set_aside[path] = step
        self._journal.asides.append(step)
        if tree:
            self._gone.add(path)
            self._gone_below.clear()

    def remove(self, dist: InstalledDist) -> None:
        """Plan removing ``dist``: its ``.dist-info`` and every file its RECORD lists inside
        the prefix (see :func:`~fetchplan.install.environment.record_files`) are set aside.
        Raises :class:`InstallError` when it has no RECORD."""
        files, touched = record_files(dist, self.target)
        if real_inside(dist.dist_info, self._prefix_real):
            # First, so the version disappears from the environment's listing at once.
            self._aside(str(dist.dist_info), tree=True)
        owned = _Owned([str(p) for p in files], self._keep)
        for path in files:
            top = owned.top(str(path))
            self._aside(str(path) if top is None else top, tree=top is not None)
        self._prune.update(touched)
        self._prune.add(dist.dist_info.parent)

    def add(self, staged: StagedWheel) -> None:
        """Plan moving ``staged`` into place: a directory the environment lacks moves whole,
        other files one by one, each file already at a destination set aside first. Call
        :func:`~fetchplan.install.environment.check_destinations` first."""
        trees: tuple[str, ...] = ()  # this wheel's directories moved whole, each with a "/"
        for item in staged.files:
            final = item.final
            parent = os.path.dirname(final)  # noqa: PTH120
            if trees and final.startswith(trees):
                self._note_dirs(parent)
                continue
            if not self._dir_exists(parent):
                top, staged_top = parent, os.path.dirname(item.staged)  # noqa: PTH120
                while not self._dir_exists(os.path.dirname(top)):  # noqa: PTH120
                    top, staged_top = os.path.dirname(top), os.path.dirname(staged_top)  # noqa: PTH120
                if final[len(top) :] == item.staged[len(staged_top) :]:
                    self._journal.ins.append(_In(staged_top, top, tree=True))
                    self._moved.add(top)
                    trees = (*trees, os.path.join(top, ""))  # noqa: PTH118
                    self._note_dirs(parent)
                    continue
                # Staging does not mirror the final layout here: the directories are made
                # (and removed again on rolling back), the file moves alone.
                self._journal.made.append([top, parent])
                self._note_dirs(parent)
            if final not in self._moved and _lexists(final) and not self._under_gone(final):
                self._aside(final, tree=False)
            self._moved.add(final)
            self._journal.ins.append(_In(item.staged, final, tree=False))

    def _note_dirs(self, directory: str) -> None:
        """``directory`` and its parents will exist once the moves in ran."""
        while directory not in self._made and directory != os.path.dirname(directory):  # noqa: PTH120
            self._made.add(directory)
            directory = os.path.dirname(directory)  # noqa: PTH120

    # -- carrying it out -------------------------------------------------------------------

    def commit(self) -> None:
        """Write the journal, set aside, move in, mark committed, then delete what was set
        aside. On any failure before the commit point every step is undone and
        :class:`InstallError` raised; a kill leaves the journal for :func:`recover`."""
        journal = self._journal
        journal.prune = sorted(str(p) for p in self._prune)
        state = _state_dir(self.target)
        path, marker = state / JOURNAL, state / COMMITTED
        journal.write(path)
        try:
            for aside in journal.asides:
                os.rename(aside.path, aside.backup)  # noqa: PTH104
            for _, deepest in journal.made:
                os.makedirs(deepest, exist_ok=True)  # noqa: PTH103
            for move in journal.ins:
                _move(move.src, move.dst, tree=move.tree, part=journal.part(move.dst))
            atomic_write_bytes(marker, journal.id.encode("ascii"))
        except BaseException as exc:
            self._undo(path, exc)
            raise
        # Committed: from here on a kill is rolled forward.
        journal.clean_up(committed=True)
        prune(self._prune, self.target)
        path.unlink()
        marker.unlink()

    def _undo(self, path: Path, exc: BaseException) -> None:
        try:
            # Interrupted just after the marker was written: this is still a roll back.
            (path.parent / COMMITTED).unlink(missing_ok=True)
            self._journal.roll_back()
            path.unlink()
        except OSError:
            log.warning("%s: could not undo the install; the next one will", path, exc_info=True)
        if isinstance(exc, FetchplanError):
            raise InstallError(str(exc)) from exc
        if isinstance(exc, OSError):
            where = exc.filename or self.target.prefix
            raise InstallError(
                f"{where}: cannot install: {exc.strerror or exc}; nothing was changed"
            ) from exc
