"""``fetchplan show``'s table and totals, from a plan built in memory."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from fetchplan._text import human_size
from fetchplan.commands.show import render_table, status_of
from fetchplan.schemas.plan import Artifact, Inputs, Plan, SatisfiedBy, Target

SHA = "b" * 64


def _artifact(name: str, size: int | None, **kw: object) -> Artifact:
    fields: dict[str, object] = {
        "name": canonicalize_name(name),
        "version": "1.0",
        "kind": "wheel",
        "filename": f"{name}-1.0-py3-none-any.whl",
        "url": f"https://files.example.test/{name}-1.0-py3-none-any.whl",
        "index": "https://idx.example.test/simple/",
        "hashes": {"sha256": SHA},
        "hash_source": "index",
        "size": size,
        "destination": f"{name}-1.0-py3-none-any.whl",
        **kw,
    }
    return Artifact(**fields)  # type: ignore[arg-type]


def test_table_statuses_and_totals() -> None:
    plan = Plan(
        created="2000-01-01T00:00:00Z",
        inputs=Inputs(requirements=("a",)),
        targets=(Target(name="t", markers={}, tags=("py3-none-any",)),),
        indexes=(),
        destination="wheels",
        artifacts=(
            _artifact("alpha", 2_500_000),
            _artifact("beta", 1_000, satisfied_by=SatisfiedBy(source="cache", sha256=SHA)),
            _artifact("gamma", None, hashes={}, hash_source=None, yanked=True),
            _artifact(
                "delta",
                300,
                url="file:///srv/delta-1.0-py3-none-any.whl",
                satisfied_by=SatisfiedBy(source="destination", sha256=SHA),
            ),
        ),
    )
    text = render_table(plan)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SIZE", "HOST", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert "2.5 MB" in rows["alpha"] and "files.example.test" in rows["alpha"]
    assert rows["alpha"].endswith("fetch")
    assert rows["beta"].endswith("in cache")
    assert rows["gamma"].endswith("fetch (no hash, yanked)") and " ? " in rows["gamma"]
    assert rows["delta"].endswith("in destination") and " local " in rows["delta"]
    assert (
        "4 artifacts: 2 to download (2.5 MB, 2500000 bytes, 1 of unknown size), "
        "2 already satisfied (1.3 kB, 1300 bytes)"
    ) in text
    assert human_size(999) == "999 B" and human_size(None) == "?"
    assert status_of(_artifact("s", 1, kind="sdist")) == "fetch (sdist)"
