"""The pipeline's configuration: ``centric.toml``, overridden by ``CENTRIC_PIPELINE_*`` variables, overridden by flags.

Every option has one flat name (``transactions``, ``work_dir`` …). In the file they sit in sections
(``[data]``, ``[catalogs]``, ``[outputs]``, ``[train]``, ``[quality]``); the environment variable is
``CENTRIC_PIPELINE_<NAME>`` and the flag ``--<name-with-dashes>``. Relative paths in the file are relative to the
file's folder; on the command line and in the environment, to the working directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from recsys.exceptions import ConfigError
from recsys.implicit_feedback import FeedbackWeights, check_weight

DEMO = "demo"  # transactions = "demo": The Complete Journey shipped with Centric
ENV_PREFIX = "CENTRIC_PIPELINE_"
SECTIONS: dict[str, tuple[str, ...]] = {
    "data": ("transactions", "schema", "catalog", "events_dir", "rebase_dates"),
    "catalogs": ("offers", "loyalty"),
    "outputs": ("work_dir", "artifacts"),
    "train": ("primary", "k", "customers", "view_weight", "click_weight"),
    "quality": ("tolerance",),
    "loyalty": ("backfill_base",),
}
WEIGHTS = ("view_weight", "click_weight")  # checked by recsys.implicit_feedback.check_weight
PATHS = ("transactions", "catalog", "events_dir", "offers", "loyalty", "work_dir", "artifacts")


@dataclass(frozen=True)
class PipelineConfig:
    """Resolved options of one pipeline run (see ``examples/centric.toml``)."""

    transactions: str = DEMO  # base transactions file (CSV/Parquet) or "demo"
    schema: str = "standard"  # input layout of ``transactions``
    catalog: str | None = None  # optional catalog file
    events_dir: str | None = None  # event store (default <home>/events)
    # move the base file's dates so that it ends the day before the first run (the demo's 2017 data made recent,
    # so that today's events are its next day); the shift is fixed at the first run and kept in state.json
    rebase_dates: bool = False
    offers: str = "examples/offers.toml"
    loyalty: str = "examples/loyalty.toml"
    work_dir: str | None = None  # state, history cache and run reports (default <home>/pipeline)
    artifacts: str | None = None  # artifact directory (default <work_dir>/artifacts)
    primary: str = "hybrid_ltr"
    k: int = 20
    customers: int | None = None  # train on a random sample of this many customers (quick runs)
    # views and clicks as extra implicit feedback of the collaborative models (recsys/implicit_feedback.py): how much
    # one viewed / clicked pair counts next to a purchase; 0 = off (the default: measure before turning it on)
    view_weight: float = 0.0
    click_weight: float = 0.0
    tolerance: float = 0.10  # the quality guard refuses a drop of validation NDCG@10 larger than this (relative)
    backfill_base: bool = True  # replay the base file's orders into the ledger (once per base file)

    def path(self, name: str) -> Path | None:
        """Return option ``name`` as a path (None when unset)."""
        value = getattr(self, name)
        return None if value is None else Path(value)

    def work(self, home: Path) -> Path:
        """The work directory."""
        return Path(self.work_dir) if self.work_dir else home / "pipeline"

    def artifact_dir(self, home: Path) -> Path:
        """The artifact directory."""
        return Path(self.artifacts) if self.artifacts else self.work(home) / "artifacts"

    def events(self, home: Path) -> Path:
        """The event store directory."""
        return Path(self.events_dir) if self.events_dir else home / "events"

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-ready dict."""
        return asdict(self)

    def feedback_weights(self) -> FeedbackWeights:
        """The weights of views and clicks (``enabled`` only when one is above 0)."""
        return FeedbackWeights(view=self.view_weight, click=self.click_weight)


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = {f.name: f.type for f in fields(PipelineConfig)}[name]
    if name in WEIGHTS and (value is None or value == ""):
        return 0.0  # empty = the default: off
    if value is None or value == "":
        return None
    try:
        if "bool" in str(kind):
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes")
        if name in WEIGHTS:
            return check_weight(name, value)
        if "float" in str(kind):
            return float(value)
        if "int" in str(kind):
            return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} = {value!r} is not a valid {kind}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return str(value)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; copy examples/centric.toml and edit it") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    out: dict[str, Any] = {}
    for section, table in data.items():
        allowed = SECTIONS.get(section)
        if allowed is None or not isinstance(table, dict):
            raise ConfigError(f"{path}: unknown section [{section}]; sections are {', '.join(SECTIONS)}")
        for name, value in table.items():
            if name not in allowed:
                raise ConfigError(
                    f"{path}: [{section}] {name} is not an option; [{section}] takes {', '.join(allowed)}"
                )
            value = _coerce(name, value, f"{path} [{section}]")
            if name in PATHS and value is not None and value != DEMO and not Path(value).is_absolute():
                value = str((path.parent / value).resolve())
            out[name] = value
    return out


def load_config(
    path: Path | None, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Return the config: defaults < ``path`` < ``CENTRIC_PIPELINE_*`` variables < ``overrides`` (flags, None = unset).

    Raises ``ConfigError`` naming the file, section, option and value that is wrong.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_from_file(path))
    for f in fields(PipelineConfig):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is not None:
            values[f.name] = _coerce(f.name, raw, f"environment {ENV_PREFIX}{f.name.upper()}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    config = PipelineConfig(**values)
    if not 0 <= config.tolerance < 1:
        raise ConfigError(f"tolerance = {config.tolerance}: give a fraction in [0, 1), e.g. 0.10 for 10 %")
    return config
