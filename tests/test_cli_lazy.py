"""The CLI imports only the sub-command it runs, and still knows them all for help and errors."""

from __future__ import annotations

import pytest

from fetchplan.cli import COMMANDS, _named_command, build_parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "-r", "x.txt"], "plan"),
        (["-v", "--log", "plan", "fetch", "p.json"], "fetch"),
        (["--log=f.log", "-q", "import", "-o", "p.json"], "import_"),
        (["-h", "plan"], None),
        (["--version"], None),
        (["bogus"], None),
        ([], None),
    ],
)
def test_named_command(argv: list[str], expected: str | None) -> None:
    assert _named_command(argv) == expected


def test_parser_for_one_command_parses_like_the_full_one() -> None:
    argv = ["-v", "fetch", "plan.json", "--jobs", "3"]
    one = build_parser(argv).parse_args(argv)
    full = build_parser().parse_args(argv)
    assert vars(one) == vars(full)


def test_unknown_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["bogus"]).parse_args(["bogus"])
    err = capsys.readouterr().err
    for name in COMMANDS:
        assert repr(name.rstrip("_")) in err
