"""The Docker deployment and the embedded stack are configured by the same names and versions."""

from __future__ import annotations

import re
from pathlib import Path

from dozor.infra.kafka import kafka_version
from dozor.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_uses_only_real_settings():
    compose = (ROOT / "infra" / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(DOZOR_[A-Z_]+)\s*:", compose))
    known = {f"DOZOR_{name.upper()}" for name in Settings.model_fields}
    assert used, "compose must configure the app through DOZOR_* variables"
    assert used <= known, f"unknown settings in docker-compose.yml: {sorted(used - known)}"


def test_compose_kafka_image_matches_the_pinned_jars():
    compose = (ROOT / "infra" / "docker-compose.yml").read_text()
    assert f"image: apache/kafka:{kafka_version()}" in compose


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "infra/test.sh" in readme
    assert "exec infra/test.sh" in ci
