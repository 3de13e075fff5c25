"""The machine line every benchmark prints above its table (cores, CPU model, Python)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """``"2 cores, <CPU>, Python 3.11.7"``."""
    return f"{os.cpu_count()} cores, {cpu_name()}, Python {platform.python_version()}"


def print_measures(command: str, rows: list[tuple[str, str]], data: str | None = None) -> None:
    """Print the machine, the command (and the data), then a ``| measure | result |`` table to paste in a README."""
    print(f"Machine: {machine()}  \nCommand: `{command}`\n")
    if data:
        print(f"Data: {data}\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
