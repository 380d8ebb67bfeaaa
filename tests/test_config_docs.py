"""The `gufe:` block as operators read it: config/README.md's table and the shipped config files.

The table lists every key with its default, and the shipped files show the block "with its
defaults"; both are prose beside the model (``fahflow.config.GufeSettings``), so these keep them
equal to it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fahflow.config import GufeSettings, load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [
    REPO / "config" / "config.yaml",
    REPO / "config" / "production.example.yaml",
    REPO / "config" / "alchemiscale.example.yaml",
]


def _readme_gufe_table() -> dict[str, str]:
    """``key: default`` of the rows in config/README.md's `gufe:` section."""
    text = (REPO / "config" / "README.md").read_text()
    section = text.split("## `gufe:`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {key: default.strip() for key, default in rows}


def _documented(value: object) -> str:
    """A default as the README's tables write it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def _model_defaults() -> dict[str, str]:
    """Every key of the `gufe:` block under its config spelling, with its default."""
    defaults = GufeSettings()
    out = {
        name: _documented(getattr(defaults, name))
        for name in GufeSettings.model_fields
        if name != "core"
    }
    for name, field in type(defaults.core).model_fields.items():
        out[f"core.{field.alias or name}"] = _documented(getattr(defaults.core, name))
    return out


def test_readme_documents_every_gufe_key_with_its_default() -> None:
    assert _readme_gufe_table() == _model_defaults()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_gufe_block_holds_the_defaults(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert "gufe" in raw, f"{path.name} shows no gufe: block"
    assert load_config(path).gufe == GufeSettings()
    core_fields = type(GufeSettings().core).model_fields.items()
    spellings = {field.alias or name for name, field in core_fields}
    assert set(raw["gufe"]["core"]) <= spellings, "the core's spelling (the schema's)"
