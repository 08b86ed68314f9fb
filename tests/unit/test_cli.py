"""A user's mistakes get one line that says what is wrong, never a traceback."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from dozor.cli import cli
from dozor.errors import DependencyMissing
from dozor.infra import kafka
from tests.conftest import free_port


def test_bad_argument_is_one_line():
    r = CliRunner().invoke(cli, ["simulate", "--rate", "-5"])
    assert r.exit_code == 2
    assert "Invalid value for '--rate'" in r.output
    assert "Traceback" not in r.output


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("DOZOR_TOPIC_PARTITIONS", "many")
    r = CliRunner().invoke(cli, ["topics"])
    assert r.exit_code == 1
    assert "DOZOR_TOPIC_PARTITIONS" in r.output
    assert "Traceback" not in r.output


def test_production_refuses_the_development_salt(monkeypatch):
    monkeypatch.setenv("DOZOR_ENVIRONMENT", "production")
    r = CliRunner().invoke(cli, ["migrate"])
    assert r.exit_code == 1
    assert "DOZOR_PLATE_SALT" in r.output


def test_busy_port_says_which_and_what_to_do(monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("DOZOR_STATE_DIR", str(tmp_path))
        monkeypatch.setenv("DOZOR_CLICKHOUSE_URL", f"http://127.0.0.1:{port}")
        r = CliRunner().invoke(cli, ["clickhouse", "serve"])
    assert r.exit_code == 1
    assert f"127.0.0.1:{port}: the port is in use" in r.output
    assert "DOZOR_CLICKHOUSE_URL" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_missing_java_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DependencyMissing) as e:
        kafka.java_binary()
    assert "apt-get install openjdk-17-jre-headless" in str(e.value)


def test_missing_java_through_the_cli(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DOZOR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DOZOR_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("DOZOR_KAFKA_CONTROLLER_PORT", str(free_port()))
    r = CliRunner().invoke(cli, ["kafka", "start"])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert "java not found" in r.output
