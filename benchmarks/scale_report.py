"""The table and the cost-curve plot of ``bench_scale_1m`` (from its JSON rows: one per size and primary model)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

TARGET_S = 360.0  # issue 18: the whole cycle at 1M customers on 2 cores
TARGET_RATIO = 1.5  # issue 18: at most this many times implicit's ALS fit + batch recommend
STAGES = ("validate", "train", "analyze", "decide", "publish")
KILLED_TIMEOUT, KILLED_MEMORY = -124, -99  # exit codes recorded for a stage the harness had to kill


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of ``rows`` (one per size): a line per stage, then the total and the yardstick."""
    out = [
        "| size | stage | wall time | CPU time | peak RSS | load before → after | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = f"{row['customers']:,} customers, {row['items']:,} items, {row['lines']:,} lines"
        for stage in row["stages"]:
            flag = {
                0: "",
                KILLED_TIMEOUT: " **killed: timeout**",
                KILLED_MEMORY: " **killed: memory cap**",
                -9: " **killed: SIGKILL (the kernel's OOM killer)**",
            }.get(stage["exit_code"], f" **failed (exit {stage['exit_code']})**")
            out.append(
                f"| {size} | {stage['name']} | {stage['seconds']:.1f} s{flag} | {stage.get('cpu_s', 0):.1f} s | "
                f"{stage['peak_mb']:,.0f} MB | "
                f"{stage['load_before']} → {stage['load_after']} | `centric {_short(stage['command'])}` |"
            )
        ruler = row["yardstick"]
        ratio = row["total_s"] / ruler["total_s"] if ruler.get("total_s") else float("nan")
        out.append(
            f"| {size} | **cycle total** | **{row['total_s']:.1f} s** (target ≤ {TARGET_S:.0f} s at 1M) | "
            f"{sum(s.get('cpu_s', 0) for s in row['stages']):.1f} s | {row['peak_mb']:,.0f} MB "
            f"(Redis {row['redis_used_mb']:,.0f} MB) | | "
            f"{'complete' if row['complete'] else '**incomplete**'}, primary `{row['primary']}` |"
        )
        if "total_s" in ruler:
            out.append(
                f"| {size} | implicit ALS fit + recommend | {ruler['total_s']:.1f} s (fit {ruler['fit_s']:.1f} + "
                f"recommend {ruler['recommend_s']:.1f}) | {ruler.get('cpu_s', 0):.1f} s | {ruler['peak_mb']:,.0f} MB | "
                f"{ruler['load_before']} → "
                f"{ruler['load_after']} | cycle / yardstick = **{ratio:.1f}×** (target ≤ {TARGET_RATIO}×) |"
            )
    return "\n".join(out)


def _short(command: str) -> str:
    """The command line from the subcommand on, with temporary paths shortened to their file names."""
    parts = shlex.split(command)
    start = parts.index("training.cli") + 1 if "training.cli" in parts else 0
    return " ".join(Path(p).name if "/" in p else p for p in parts[start:])


def plot(rows: list[dict[str, Any]], path: Path, primary: str = "hybrid") -> None:
    """Draw wall time, CPU time and peak memory per stage against customers (log-log) for the runs with ``primary``,
    with the yardstick and the train stage of runs with another primary model (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    others = sorted((r for r in rows if r["primary"] != primary), key=lambda r: r["customers"])
    rows = sorted((r for r in rows if r["primary"] == primary), key=lambda r: r["customers"])
    fig, (ax_t, ax_c, ax_m) = plt.subplots(1, 3, figsize=(15, 4.4))
    for other in sorted({r["primary"] for r in others}):
        points = [
            (r["customers"], s)
            for r in others
            for s in r["stages"]
            if r["primary"] == other and s["name"] == "train" and s["exit_code"] == 0
        ]
        if points:
            xs = [p[0] for p in points]
            label = f"train --primary {other}"
            ax_t.plot(xs, [p[1]["seconds"] for p in points], marker="x", linestyle="--", label=label)
            ax_c.plot(xs, [p[1]["cpu_s"] for p in points], marker="x", linestyle="--", label=label)
            ax_m.plot(xs, [p[1]["peak_mb"] / 1024 for p in points], marker="x", linestyle="--", label=label)
    for name in STAGES:
        points = [(r["customers"], s) for r in rows for s in r["stages"] if s["name"] == name and s["exit_code"] == 0]
        if points:
            xs = [p[0] for p in points]
            ax_t.plot(xs, [p[1]["seconds"] for p in points], marker="o", label=name)
            ax_c.plot(xs, [p[1]["cpu_s"] for p in points], marker="o", label=name)
            ax_m.plot(xs, [p[1]["peak_mb"] / 1024 for p in points], marker="o", label=name)
    complete = [r for r in rows if r["complete"]]
    if complete:
        xs = [r["customers"] for r in complete]
        ax_t.plot(xs, [r["total_s"] for r in complete], marker="s", color="black", label="cycle total")
        ax_c.plot(
            xs, [sum(s["cpu_s"] for s in r["stages"]) for r in complete], marker="s", color="black", label="cycle"
        )
    ruler = [r for r in rows if "total_s" in r["yardstick"]]
    if ruler:
        xs, style = [r["customers"] for r in ruler], {"marker": "^", "linestyle": "--", "color": "grey"}
        ax_t.plot(xs, [r["yardstick"]["total_s"] for r in ruler], **style, label="implicit ALS fit + recommend")
        ax_c.plot(xs, [r["yardstick"]["cpu_s"] for r in ruler], **style, label="implicit (process, matrix incl.)")
    ax_t.axhline(TARGET_S, color="red", linewidth=0.8, linestyle=":", label="6 min target")
    panels = ((ax_t, "wall time per stage", "seconds"), (ax_c, "CPU time per stage", "CPU seconds"))
    for ax, title, unit in (*panels, (ax_m, "peak RSS per stage", "GB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("customers")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    where = rows[-1]["machine"] if rows else ""
    fig.suptitle(f"Centric offline cycle, train --primary {primary} ({where}; shared machine, see table)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
