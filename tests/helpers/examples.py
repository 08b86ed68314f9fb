"""The example exports and mappings committed under docs/examples/, as the tests read them."""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "SAMPLE", "MAPPING", "CAD_MAPPING", "ACD_MAPPING"]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SAMPLE = EXAMPLES / "violations_sample.csv"
MAPPING = EXAMPLES / "violations_ru.toml"
CAD_MAPPING = EXAMPLES / "cad_calls.toml"
ACD_MAPPING = EXAMPLES / "acd_calls.toml"
