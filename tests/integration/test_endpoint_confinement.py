"""The endpoint's second wall: what the confined engine process refuses on its own, with the SQL
policy bypassed on purpose (statements sent straight to engine handles), and what the process
holds (no secret in its environment, command line or configuration).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dozor.infra.sandbox import SAFE_ENVIRONMENT
from tests.helpers.endpoint import ClickHouseEndpoint

pytestmark = pytest.mark.integration

SECRET = "secret-of-the-host-5e21"

#: Runs in a process of its own, as the engine process runs: open_confined, then raw statements on
#: engine handles, never through the policy.
BYPASS = r"""
import json, sys
from dozor.infra.chdb_http import EndpointConfig, User, open_confined
from dozor.infra.chdb_policy import READER, WRITER

data, secret, outdir, port = sys.argv[1:5]
config = EndpointConfig(data_dir=data, host="127.0.0.1", port=0,
                        users=[User("default", "pw", WRITER).hashed()], handles=1, reader_handles=1)
server, engine = open_confined(config)
writer, reader = engine._pools[WRITER].take(), engine._pools[READER].take()

def run(h, sql):
    try:
        return ["ok", engine._raw(h, sql).bytes().decode()[:300]]
    except Exception as e:
        return ["refused", str(e)[:300]]

def py(fn):
    try:
        fn()
        return ["ok", ""]
    except OSError as e:
        return ["refused", str(e)]

out = {
    "file": run(writer, f"SELECT * FROM file('{secret}', 'LineAsString')"),
    "file_reader": run(reader, f"SELECT * FROM file('{secret}', 'LineAsString')"),
    "environ": run(writer, "SELECT * FROM file('/proc/self/environ', 'RawBLOB')"),
    "environ_task": run(writer, "SELECT * FROM file('/proc/thread-self/environ', 'RawBLOB')"),
    "outfile": run(writer, f"SELECT 1 INTO OUTFILE '{outdir}/out-sql'"),
    "outfile_show": run(reader, f"SHOW DATABASES INTO OUTFILE '{outdir}/out-show'"),
    # Making a File table touches nothing yet; reading it is what must fail.
    "file_table": (run(writer, "CREATE TABLE default.leak (s String) "
                               f"ENGINE = File(LineAsString, '{secret}')")
                   and run(writer, "SELECT * FROM default.leak")),
    # The engine retries an address it cannot reach: once, within seconds, is enough here.
    "url": run(writer, f"SELECT * FROM url('http://127.0.0.1:{port}/', 'LineAsString', 's String') "
                       "SETTINGS http_max_tries = 1, max_execution_time = 10"),
    # The default database opens any name as a file; outside the data directory nothing opens.
    "file_database": run(writer, f"SELECT * FROM default.`{secret}`"),
    "file_database_relative": run(reader, "SELECT * FROM default.`../../../../etc/hostname`"),
    "values_code": run(writer, f"SELECT * FROM format(Values, 's String', $$(file('{secret}'))$$)"),
    "reader_write": run(reader, "CREATE TABLE default.r (a UInt8) ENGINE = Memory"),
    "reader_readonly_off": run(reader, "SET readonly = 0"),
    "python_read": py(lambda: open(secret).read()),
    "python_connect": py(lambda: __import__("socket").create_connection(("127.0.0.1", int(port)), 3)),
    "works": run(writer, "SELECT sum(number) FROM numbers(10)"),
}
print(json.dumps(out))
"""


def test_the_confined_engine_refuses_what_the_policy_would_with_the_policy_bypassed(tmp_path):
    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    outdir = tmp_path / "host"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    connections: list[object] = []
    threading.Thread(target=lambda: connections.append(listener.accept()), daemon=True).start()
    proc = subprocess.run(
        [sys.executable, "-c", BYPASS, str(tmp_path / "data"), str(secret), str(outdir),
         str(listener.getsockname()[1])],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "DOZOR_PLATE_SALT": SECRET},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["works"] == ["ok", "45\n"]
    for attack, (verdict, text) in out.items():
        if attack == "works":
            continue
        assert verdict == "refused", f"{attack} went through the second wall: {text}"
        assert SECRET not in text
    assert not any(p.name.startswith("out") for p in outdir.iterdir())
    assert not connections, "the confined engine opened a TCP connection"
    listener.close()


def test_the_engine_process_holds_no_secret(tmp_path):
    password, reader_password, salt = "w-pass-" + SECRET, "r-pass-" + SECRET, "salt-" + SECRET
    ch = ClickHouseEndpoint(
        tmp_path,
        env={"DOZOR_CLICKHOUSE_PASSWORD": password, "DOZOR_CLICKHOUSE_READER_PASSWORD": reader_password,
             "DOZOR_PLATE_SALT": salt, "DOZOR_KAFKA_SASL_PASSWORD": "k-" + SECRET},
    )  # fmt: skip
    ch.start()
    try:
        pid = ch.proc.pid  # the same process: `dozor clickhouse serve` replaced itself
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {e.split(b"=", 1)[0].decode() for e in environ if e}
        assert names <= set(SAFE_ENVIRONMENT), names
        assert SECRET.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        # The password still works: it reached the process hashed.
        import clickhouse_connect

        c = clickhouse_connect.get_client(host="127.0.0.1", port=ch.port, password=password)
        assert c.command("SELECT 1") == 1
    finally:
        ch.stop()
