"""The one exception root of fetchplan and the subclasses shared by every stage.

``str(err)`` is always a complete one-line message fit for a user; the CLI alone decides how
to print it and which exit code to use. Stage-specific errors subclass these in their package.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "FetchplanError",
    "FieldProblem",
    "FileFormatError",
    "HashMismatch",
    "InputError",
    "NetworkError",
]


class FetchplanError(Exception):
    """Root of every error fetchplan raises on purpose."""

    exit_code: int = 1


class InputError(FetchplanError):
    """A user-supplied argument, requirement or option is unusable."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem in a file: the dotted path of the field and what is wrong with it, and the
    file when it is not the one the error names (a merge reads several)."""

    path: str
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = self.path if self.path else "(document)"
        message = self.message
        if len(message) > self.MAX_SHOWN:  # a message quoting a hostile value in full
            message = message[: self.MAX_SHOWN - 3] + "..."
        return f"{where}: {message}"

    MAX_SHOWN = 300

    def in_error_about(self, filename: str) -> FieldProblem:
        """This problem as an error about ``filename`` lists it: unchanged when it is about
        that file (or names none), else saying its own file at the end of its message, once."""
        if self.file is None or self.file == filename:
            return self
        suffix = f" ({self.file})"
        if self.message.endswith(suffix):
            return self
        return replace(self, message=self.message + suffix)


class FileFormatError(FetchplanError):
    """A file we read (plan, manifest, checkpoint, policy, lock file) is malformed.

    Carries every problem found, each with the dotted path of its field, so a user fixes them
    all in one go. ``str()`` is one line per problem, the first naming the file; past
    ``MAX_LISTED`` problems it ends with a count of the others (``problems`` keeps them all).
    ``filename`` is the file the error is about; a problem that carries another file (a merge
    reads several) says it, so no caller formats file names into messages.
    """

    exit_code = 2
    MAX_LISTED = 10

    def __init__(self, filename: str, problems: list[FieldProblem]) -> None:
        self.filename = filename
        self.problems = [problem.in_error_about(filename) for problem in problems]
        super().__init__(self._message())

    def lines(self) -> list[str]:
        """Every problem as one line naming the file, in order (none left out)."""
        return [f"{self.filename}: {p}" for p in self.problems]

    def _message(self) -> str:
        lines = self.lines()
        if len(lines) == 1:
            return lines[0]
        lines = [f"{self.filename}: {len(self.problems)} problems", *lines[: self.MAX_LISTED]]
        hidden = len(self.problems) - self.MAX_LISTED
        if hidden > 0:
            lines.append(f"{self.filename}: (and {hidden} more)")
        return "\n".join(lines)


class HashMismatch(FetchplanError):
    """A file's content does not match the hash the plan or manifest promised."""

    def __init__(self, path: str, algorithm: str, expected: str, actual: str) -> None:
        self.path = path
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(f"{path}: {algorithm} mismatch: expected {expected}, got {actual}")


class NetworkError(FetchplanError):
    """A request failed for good (after the retries its policy allows)."""
