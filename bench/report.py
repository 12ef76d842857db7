"""The results as a markdown table (and JSON): medians, min-max, paired ratios, targets."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

__all__ = ["describe_probe", "link_limit", "render", "to_json"]


def _spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def link_limit(
    stage: str, res: Any, delay_ms: float, rate_mbit: float, variant: str = "pep658"
) -> float:
    """Seconds the link itself needs: bytes / bandwidth + round trips (0: no such limit).

    plan: one round trip for the connection, then two per level of the dependency graph
    (index page, then metadata), plus the index pages and metadata at full rate.
    fetch: a connection and a request round trip, plus every wheel at full rate.
    run: the plan's round trips plus all bytes (a tool may overlap resolving and downloading).
    Rows off the shaped link (``loopback``, ``public``) and warm or many-target rows have none.
    """
    if variant in {"loopback", "public"} or stage not in {"plan", "fetch", "run"}:
        return 0.0
    meta = getattr(res, "minimal_meta_bytes", 0) if variant == "minimal" else res.meta_bytes
    rtt = 2 * delay_ms / 1000
    bw = rate_mbit * 1e6 / 8
    plan_rtts = rtt * (1 + 2 * res.depth)
    if stage == "plan":
        return float(plan_rtts + meta / bw)
    if stage == "fetch":
        return float(2 * rtt + res.wheel_bytes / bw)
    return float(plan_rtts + (meta + res.wheel_bytes) / bw)


_VARIANT_LABELS = {
    "nometa": " (no PEP 658)",
    "minimal": " (minimal index)",
    "loopback": " (loopback, unshaped)",
    "public": " (public index, unshaped)",
}
_PER_ARTIFACT = {"plan", "warm", "targets"}


def _ok(samples: Sequence[Any]) -> list[Any]:
    return [s for s in samples if s is not None]


def _paired(row: Any, base: Any) -> list[float]:
    out = []
    for a, b in zip(row.samples, base.samples, strict=False):
        if a is not None and b is not None and b.wall_s > 0:
            out.append(a.wall_s / b.wall_s)
    return out


def _find(res: Any, stage: str, variant: str, tool: str) -> Any:
    for r in res.rows:
        if (r.stage, r.variant, r.tool) == (stage, variant, tool):
            return r
    return None


def describe_probe(probe: dict[str, float], args: argparse.Namespace) -> str:
    if not probe:
        return "not measured"
    rtt = 2 * args.delay_ms
    conns = [k for k in probe if k.startswith("mbit_s_")]
    rates = ", ".join(
        f"{probe[k]:.0f} Mbit/s over {k.removeprefix('mbit_s_').removesuffix('conn')} conn."
        for k in sorted(conns)
    )
    return (
        f"request on a new connection {probe['new_connection_s'] * 1000:.0f} ms "
        f"(2 RTT = {2 * rtt:g} ms), on a kept-alive one "
        f"{probe['kept_alive_s'] * 1000:.0f} ms (1 RTT = {rtt:g} ms); "
        f"{rates} (target {args.rate_mbit:g})"
    )


def _row_line(res: Any, row: Any, args: argparse.Namespace) -> str:
    ok = _ok(row.samples)
    limit = link_limit(row.stage, res, args.delay_ms, args.rate_mbit, row.variant)
    label = row.label + _VARIANT_LABELS.get(row.variant, "")
    if not ok:
        status = row.status or "no successful run"
        return f"| {row.stage} | {label} | {status} |" + " |" * 9
    walls = [s.wall_s for s in ok]
    ratios = []
    for base_tool in ("uv", "pip"):
        base = _find(res, row.stage, row.variant, base_tool)
        if base is None or base is row:
            ratios.append("-")
        else:
            ratios.append(_spread(_paired(row, base), "{:.2f}x"))
    cpu = [s.cpu_s for s in ok]
    med_cpu = statistics.median(cpu)
    if row.stage in _PER_ARTIFACT:
        per = f"{med_cpu / max(res.dists, 1) * 1000:.1f} ms/artifact"
    else:
        per = f"{med_cpu / max(res.wheel_bytes / 1e6, 1e-9) * 1000:.1f} ms/MB"
    rss = _spread([s.maxrss_mb for s in ok], "{:.0f}")
    served = _spread([s.server_bytes / 1e6 for s in ok], "{:.2f}")
    reqs = _spread([float(s.requests) for s in ok], "{:.0f}")
    proxy = statistics.median([s.extra.get("proxy_cpu_s", 0.0) for s in ok])
    checks = [s.extra.get("import_ok") for s in ok if "import_ok" in s.extra]
    note = row.status
    if checks:
        note = "all pins installed" if all(checks) else "WRONG install: pins missing"
    if proxy > 0:
        note = f"{note}; proxy CPU {proxy:.2f} s".lstrip("; ")
    firsts = [s.extra["first_wall_s"] for s in ok if "first_wall_s" in s.extra]
    if firsts:
        note = f"{note}; first run {_spread(firsts)} s".lstrip("; ")
    if row.waterfall:
        note = f"{note}; waterfall: {row.waterfall}".lstrip("; ")
    if len(ok) < len(row.samples):
        note = f"{len(row.samples) - len(ok)} run(s) failed; {note}"
    limits = f"{limit:.2f} | {statistics.median(walls) / limit:.1f}x" if limit > 0 else "- | -"
    return (
        f"| {row.stage} | {label} | {_spread(walls)} | {ratios[0]} | {ratios[1]} "
        f"| {limits} | {_spread(cpu)} | {per} "
        f"| {rss} | {served} | {reqs} | {note} |"
    )


def _targets(res: Any, args: argparse.Namespace, measured_mbit: float | None) -> list[str]:
    def ratio(stage: str, variant: str, tool: str) -> float | None:
        fp = _find(res, stage, variant, "fetchplan")
        base = _find(res, stage, variant, tool)
        if fp is None or base is None:
            return None
        return _median(_paired(fp, base))

    def fp_samples(stage: str, variant: str = "pep658") -> list[Any]:
        r = _find(res, stage, variant, "fetchplan")
        return [] if r is None else _ok(r.samples)

    def verdict(value: float | None, limit: float, fmt: str = "{:.2f}x") -> str:
        if value is None:
            return "not measured | -"
        return f"{fmt.format(value)} | {'yes' if value <= limit else 'NO'}"

    lines = [
        "| target | limit | measured (median) | met |",
        "| --- | --- | --- | --- |",
    ]
    index = getattr(res, "index", "real")
    here = "public" if index == "public" else "pep658"
    cold = (
        (("public", "the public index"),)
        if index == "public"
        else (
            ("pep658", "with PEP 658"),
            ("nometa", "without PEP 658"),
            ("minimal", "minimal index"),
        )
    )
    for variant, what in cold:
        lines.append(
            f"| plan vs uv pip compile, {what} | ≤ 1.2x | "
            f"{verdict(ratio('plan', variant, 'uv'), 1.2)} |"
        )
    lines.append(
        f"| warm plan vs uv's warm compile | ≤ 1.5x | {verdict(ratio('warm', here, 'uv'), 1.5)} |"
    )
    lines.append(
        "| plan of 12 targets vs as many uv compiles | ≤ 0.5x | "
        f"{verdict(ratio('targets', here, 'uv'), 0.5)} |"
    )
    plan_rss = max((s.maxrss_mb for s in fp_samples("plan", here)), default=None)
    lines.append(f"| plan peak RSS | ≤ 150 MB | {verdict(plan_rss, 150, '{:.0f} MB (max)')} |")
    if index == "public":
        return lines
    for stage, variant, what, limit in (
        ("run-warm", "loopback", "warm run, fresh venv, loopback", 1.5),
        ("run-warm", "pep658", "warm run, fresh venv, shaped link", 1.5),
        ("run", "loopback", "cold run, loopback", 1.5),
        ("run", "pep658", "cold run, shaped link", 1.1),
        ("install-warm", "loopback", "install of a fetched manifest, second", 1.5),
    ):
        lines.append(
            f"| {what} vs uv pip install (warm cache for the warm rows) | ≤ {limit}x | "
            f"{verdict(ratio(stage, variant, 'uv'), limit)} |"
        )
    for variant, what in (("pep658", "with"), ("nometa", "without")):
        samples = fp_samples("plan", variant)
        share = (
            _median([s.server_bytes / res.wheel_bytes for s in samples])
            if samples and res.wheel_bytes
            else None
        )
        lines.append(
            f"| plan's bytes from the server / planned artifacts' bytes, {what} PEP 658 | < 2% | "
            f"{verdict(share, 0.02, '{:.2%}')} |"
        )
    plan = fp_samples("plan")
    fetch = fp_samples("fetch")
    limit = link_limit("fetch", res, args.delay_ms, args.rate_mbit)
    over = _median([s.wall_s / limit for s in fetch]) if fetch else None
    lines.append(
        f"| fetch / link limit ({limit:.2f} s at {args.rate_mbit:g} Mbit/s) | ≤ 1.10x | "
        f"{verdict(over, 1.10, '{:.3f}x')} |"
    )
    if measured_mbit:
        real = link_limit("fetch", res, args.delay_ms, measured_mbit)
        over_real = _median([s.wall_s / real for s in fetch]) if fetch else None
        lines.append(
            f"| fetch / link limit at the shaping check's {measured_mbit:.0f} Mbit/s "
            f"({real:.2f} s) | ≤ 1.10x | {verdict(over_real, 1.10, '{:.3f}x')} |"
        )
    lines.append(
        f"| fetch vs pip download | ≤ 0.5x | {verdict(ratio('fetch', 'pep658', 'pip'), 0.5)} |"
    )
    lines.append(
        "| run vs pip install --no-compile | ≤ 0.35x | "
        f"{verdict(ratio('run', 'pep658', 'pip'), 0.35)} |"
    )
    mem = max((s.maxrss_mb for s in fetch), default=None)
    big_size = res.biggest_wheel[1]
    lines.append(
        f"| fetch peak memory (largest wheel {big_size / 1e6:.1f} MB) | < 150 MB | "
        f"{verdict(mem, 150, '{:.0f} MB (max)')} |"
    )
    resume = res.resume
    if resume:
        total = (resume["first_bytes"] + resume["second_bytes"]) / res.wheel_bytes
        value: float | None = total if resume["second_ok"] else None
        how = (
            f"killed after {resume['killed_after_s']:.1f} s with "
            f"{resume['on_disk_when_killed'] / 1e6:.0f} MB on disk"
            if resume["first_killed"]
            else "finished before it could be killed"
        )
    else:
        value, how = None, "not run"
    lines.append(
        f"| fetch killed half-way ({how}) + rerun: server bytes / plan bytes | ≤ 1.05x | "
        f"{verdict(value, 1.05)} |"
    )
    cpu_mb = _median([s.cpu_s / (res.wheel_bytes / 1e6) * 1000 for s in fetch]) if fetch else None
    cpu_art = _median([s.cpu_s / res.dists * 1000 for s in plan]) if plan else None
    lines.append(
        "| fetch CPU per fetched MB | report | "
        + ("not measured" if cpu_mb is None else f"{cpu_mb:.1f} ms/MB")
        + " | - |"
    )
    lines.append(
        "| plan CPU per planned artifact | report | "
        + ("not measured" if cpu_art is None else f"{cpu_art:.1f} ms/artifact")
        + " | - |"
    )
    return lines


def render(results: Sequence[Any], meta: dict[str, Any], args: argparse.Namespace) -> str:
    """The whole results page."""
    out = [
        f"# fetchplan benchmark, {meta['date']}",
        "",
        f"- fetchplan: `{meta['fetchplan']}`; pip {meta['versions']['pip']}, "
        f"uv {meta['versions']['uv']}; {meta['machine']}",
        f"- network: {meta['network']}",
        f"- shaping check: {describe_probe(meta['probe'] or {}, args)}",
        f"- {args.runs} runs per row, cold caches, each run in a fresh temporary directory "
        "(and a fresh venv for `run`); wall seconds as median (min-max); `vs uv`/`vs pip`: "
        "this row's wall time over that tool's in the same stage, paired run by run.",
        "- link limit: bytes / bandwidth + round trips (plan: 1 + 2 per dependency level; "
        "fetch: 2); CPU: user + system of the command and its children; peak RSS: the largest "
        "process; server MB and requests: from nginx's access log.",
    ]
    if meta.get("fetchplan_missing"):
        missing = ", ".join(f"`{k}`" for k in sorted(meta["fetchplan_missing"]))
        out.append(f"- fetchplan commands not available in this checkout: {missing}")
    gate = meta.get("cpu_gate")
    if gate and gate["fastest_s"] != float("inf"):
        slow = sum(
            1
            for res in results
            for row in res.rows
            for sample in row.samples
            if sample is not None and sample.extra.get("cpu_steady") is False
        )
        out.append(
            f"- machine speed: each command waited (at most {args.cpu_gate_wait:g} s) until a "
            f"CPU probe ran within 1.25x of the fastest one ({gate['fastest_s'] * 1000:.0f} ms), "
            f"{gate['waited_s']:.0f} s in all; "
            f"{slow} sample(s) ran without reaching it"
        )
    if meta.get("index"):
        out.append(f"- index: {meta['index']}")
    out.append(f"- total bench time: {meta['elapsed_s'] / 60:.1f} min")
    for res in results:
        big = res.biggest_wheel
        out += [
            "",
            f"## {res.name}: {res.dists} distributions, {res.wheel_bytes / 1e6:.1f} MB of wheels "
            f"(largest {big[1] / 1e6:.1f} MB), {res.meta_bytes / 1e3:.0f} kB of index pages and "
            f"metadata, {res.depth} dependency levels",
            "",
            "| stage | command | wall s | vs uv | vs pip | link limit s | x limit | CPU s "
            "| CPU per unit | peak RSS MB | server MB | requests | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        out += [_row_line(res, row, args) for row in res.rows]
        if getattr(res, "targets", 0):
            note = f"; not made: {res.targets_note}" if res.targets_note else ""
            out += ["", f"The 12 targets install {res.targets} projects in all{note}."]
        out += ["", f"Targets ({res.name} set; the issue sets them for the large set):", ""]
        probe = meta.get("probe") or {}
        rates = [v for k, v in probe.items() if k.startswith("mbit_s_")]
        out += _targets(res, args, max(rates) if rates else None)
    return "\n".join(out) + "\n"


def to_json(results: Sequence[Any], meta: dict[str, Any]) -> str:
    return json.dumps({"meta": meta, "sets": [asdict(r) for r in results]}, indent=1, default=str)
