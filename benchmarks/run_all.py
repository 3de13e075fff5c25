"""Run every benchmark script in turn and print their tables (``make bench``).

Each script is also runnable on its own; pass ``--quick`` to run the reduced sizes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run ``bench_*.py`` scripts; return the number of scripts that failed."""
    extra = sys.argv[1:]
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n### {script.name}\n", flush=True)
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{script.stem}", *extra], cwd=HERE.parent)
        if code != 0:
            print(f"{script.name} failed with exit code {code}", flush=True)
            failed += 1
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
