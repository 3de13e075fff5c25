"""``read_toml``: the one reader of TOML definition files (loyalty program, offer catalog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.config_files import read_toml
from recsys.exceptions import ConfigError


def test_a_toml_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "Café"\n[tier]\nmin = 2\n', encoding="utf-8")
    assert read_toml(path, "unused") == {"name": "Café", "tier": {"min": 2}}


def test_a_missing_file_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as err:
        read_toml(path, "offer catalog not found; pass --offers FILE")
    assert str(err.value) == f"{path}: offer catalog not found; pass --offers FILE"


def test_a_file_that_is_not_toml_names_the_file_and_the_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[offer]\nid=")
    with pytest.raises(ConfigError) as err:
        read_toml(path, "unused")
    assert str(err.value).startswith(f"{path}: not valid TOML: ") and "line 1" in str(err.value)
