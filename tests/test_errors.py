"""The one-line errors built from :class:`FieldProblem`: each names its file without the
caller formatting it."""

from __future__ import annotations

from fetchplan.errors import FieldProblem, FileFormatError


def test_a_problem_of_another_file_says_which_once() -> None:
    own = FieldProblem("plan.sha256", "differs", "a/manifest.json")
    unnamed = FieldProblem("shard.count", "disagree")
    other = FieldProblem("artifacts", "2 missing", "out/manifest.json")
    error = FileFormatError("a/manifest.json", [own, unnamed, other])
    assert error.problems[:2] == [own, unnamed]
    assert error.problems[2].message == "2 missing (out/manifest.json)"
    assert error.problems[2].file == "out/manifest.json"
    assert error.lines() == [
        "a/manifest.json: plan.sha256: differs",
        "a/manifest.json: shard.count: disagree",
        "a/manifest.json: artifacts: 2 missing (out/manifest.json)",
    ]
    assert str(error).splitlines() == ["a/manifest.json: 3 problems", *error.lines()]
    again = FileFormatError("a/manifest.json", error.problems)
    assert again.problems == error.problems  # re-raising does not repeat the file


def test_lines_list_every_problem_past_the_cap() -> None:
    problems = [FieldProblem(f"line {i}", "bad", "f.txt") for i in range(1, 21)]
    error = FileFormatError("f.txt", problems)
    assert len(error.lines()) == 20
    assert str(error).splitlines()[-1] == "f.txt: (and 10 more)"
