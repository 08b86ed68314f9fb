"""A user's mistakes get one line that says what is wrong, never a traceback."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from dozor.cli import cli
from dozor.errors import DependencyMissing
from dozor.infra import kafka
from tests.helpers.ports import free_port


@pytest.mark.parametrize(
    ("env", "args", "exit_code", "says"),
    [
        ({}, ["simulate", "--rate", "-5"], 2, "Invalid value for '--rate'"),
        ({"DOZOR_TOPIC_PARTITIONS": "many"}, ["topics"], 1, "DOZOR_TOPIC_PARTITIONS"),
        # Production refuses the development salt, and says which setting to set.
        ({"DOZOR_ENVIRONMENT": "production"}, ["migrate"], 1, "DOZOR_PLATE_SALT"),
    ],
    ids=["bad-argument", "bad-setting", "development-salt-in-production"],
)
def test_a_bad_argument_or_setting_is_named_without_a_traceback(monkeypatch, env, args, exit_code, says):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == exit_code
    assert says in r.output
    assert "Traceback" not in r.output


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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DOZOR_BATCH_MAX_ROWS", "0"),
        ("DOZOR_SIMULATE_RATE", "-3"),
        ("DOZOR_BATCH_MAX_SECONDS", "0"),
        ("DOZOR_TOPIC_PARTITIONS", "0"),
        ("DOZOR_DISPLAY_TIMEZONE", "Mars/Olympus"),
        ("DOZOR_ARRIVAL_TARGET_MINUTES", '{"1": 10}'),
        ("DOZOR_UNIT_ID_PATTERN", "(unclosed"),
        ("DOZOR_SPIKE_P_VALUE", "2"),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    r = CliRunner().invoke(cli, ["status"])
    assert r.exit_code == 1
    assert variable in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output


def _mapping(tmp_path, text: bytes):
    path = tmp_path / "m.toml"
    path.write_bytes(text)
    data = tmp_path / "d.csv"
    data.write_text("t,city\n2024-01-01 00:00:00,astana\n")
    return CliRunner().invoke(cli, ["replay", str(data), "--mapping", str(path)])


def test_a_mapping_that_is_not_utf8_is_one_line(tmp_path):
    r = _mapping(tmp_path, 'family = "violations"\n[columns]\ncity = "Город"\n'.encode("cp1251"))
    assert r.exit_code == 1 and "not UTF-8" in r.output and "Traceback" not in r.output


def test_an_unparsable_time_format_is_one_line(tmp_path):
    text = b'family = "violations"\n[columns]\nevent_time = "t"\n[time]\nformat = "%Y-%m-%d %Q"\n'
    r = _mapping(tmp_path, text)
    assert r.exit_code == 1 and "[time] format" in r.output and "Traceback" not in r.output


def test_an_unreachable_clickhouse_is_one_line(monkeypatch):
    monkeypatch.setenv("DOZOR_CLICKHOUSE_URL", f"http://127.0.0.1:{free_port()}")
    r = CliRunner().invoke(cli, ["migrate"])
    assert r.exit_code == 1
    # Log lines may come first (the driver's retry warning); the error is the last line.
    assert r.output.strip().splitlines()[-1].startswith("Error: cannot reach ClickHouse at http://127.0.0.1:")
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DOZOR_PLATE_SALT": ""}, "DOZOR_PLATE_SALT"),
        ({"DOZOR_PLATE_SALT": "s3cret", "DOZOR_CLICKHOUSE_PASSWORD": ""}, "DOZOR_CLICKHOUSE_PASSWORD"),
        ({"DOZOR_PLATE_SALT": "s3cret", "DOZOR_CLICKHOUSE_PASSWORD": "p"}, "DOZOR_KAFKA_SECURITY_PROTOCOL"),
        (
            {
                "DOZOR_PLATE_SALT": "s3cret",
                "DOZOR_CLICKHOUSE_PASSWORD": "p",
                "DOZOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            },
            "DOZOR_ACCESS_FILE",
        ),
    ],
)
def test_production_refuses_what_would_leave_it_open(monkeypatch, env, named):
    monkeypatch.setenv("DOZOR_ENVIRONMENT", "production")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(cli, ["status"])
    assert r.exit_code == 1 and named in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_the_clickhouse_endpoint_will_not_serve_without_passwords_off_loopback_or_in_production():
    from dozor.errors import ConfigError
    from dozor.infra.chdb_http import User, check_users
    from dozor.infra.chdb_policy import READER, WRITER

    open_users = [User("default", "", WRITER), User("dozor_reader", "", READER)]
    check_users(open_users, "127.0.0.1", production=False)  # development on loopback: allowed
    with pytest.raises(ConfigError, match="DOZOR_CLICKHOUSE_PASSWORD"):
        check_users(open_users, "0.0.0.0", production=False)
    with pytest.raises(ConfigError, match="in production"):
        check_users(open_users, "127.0.0.1", production=True)
    with pytest.raises(ConfigError, match="DOZOR_CLICKHOUSE_READER_PASSWORD"):
        check_users([User("default", "w", WRITER), User("dozor_reader", "", READER)], "10.1.2.3", False)
    check_users([User("default", "w", WRITER), User("dozor_reader", "r", READER)], "0.0.0.0", True)
