"""Reading a TOML definition file (the loyalty program, the offer catalog) with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from recsys.exceptions import ConfigError


def read_toml(path: Path, missing: str) -> dict[str, Any]:
    """Return the parsed TOML file at ``path``.

    Raises ``ConfigError`` naming the file: ``"<path>: <missing>"`` when it does not exist (``missing`` says what
    to do), ``"<path>: not valid TOML: <parser's message>"`` when it cannot be parsed.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
