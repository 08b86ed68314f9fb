"""clickhouse-connect's own integration suite against the embedded endpoint: how server-like it is.

The suite lives in the driver's repository, not in its PyPI package, so it is read from a checkout
given on the command line (it is never copied into this repository). The tests run against the
driver Dozor installs; the checkout may be a little newer or older than it, and a few failures are
that drift, named as such in the result.

    python benchmarks/driver_conformance.py --suite /path/to/clickhouse-connect \
        > benchmarks/results/driver_conformance.txt

It starts ``dozor clickhouse serve`` on a free port with a fresh data directory (no passwords, on
loopback, as in development), copies the checkout's ``tests/`` to a temporary directory, runs
pytest there with the suite's ``CLICKHOUSE_CONNECT_TEST_*`` variables, and prints the totals and
the failures by test file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import free_port

#: Suites that need what no embedded engine has (a docker-run server, a proxy, JWT, SQLAlchemy's
#: dialect against a server's catalogue): skipped, and counted as skipped.
IGNORED = ("test_sqlalchemy", "test_proxy.py", "test_jwt_auth.py")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, required=True, help="a checkout of clickhouse-connect")
    ap.add_argument("--timeout", type=int, default=1200)
    args = ap.parse_args()
    tests = args.suite / "tests"
    if not (tests / "integration_tests" / "conftest.py").exists():
        sys.exit(f"{tests}/integration_tests/conftest.py not found: --suite must be a checkout")
    work = Path(tempfile.mkdtemp(prefix="dozor-conformance-"))
    shutil.copytree(tests, work / "tests")
    for name in IGNORED:  # removed, not --ignore'd: pytest would still import their conftest
        path = work / "tests" / "integration_tests" / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DOZOR_STATE_DIR": str(work / "state"),
        "DOZOR_CLICKHOUSE_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "dozor", "clickhouse", "serve"], env=env,
        stdout=open(work / "endpoint.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        test_env = {
            **os.environ,
            "CLICKHOUSE_CONNECT_TEST_HOST": "127.0.0.1",
            "CLICKHOUSE_CONNECT_TEST_PORT": str(port),
            "CLICKHOUSE_CONNECT_TEST_DOCKER": "False",
            "CLICKHOUSE_CONNECT_TEST_TLS": "False",
        }
        t0 = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/integration_tests", "-q", "-rfE", "-p", "no:cacheprovider",
             "-o", "addopts=", "--timeout=120"],
            cwd=work, env=test_env, capture_output=True, text=True, timeout=args.timeout,
        )  # fmt: skip
        elapsed = time.monotonic() - t0
    finally:
        server.terminate()
        server.wait(20)
    import clickhouse_connect

    out = run.stdout
    summary = next(
        (line for line in reversed(out.splitlines()) if re.search(r"\d+ (passed|failed)", line)), ""
    )
    failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
    by_file = Counter(line.split()[1].split("::")[0] for line in failed)
    print(f"# {' '.join(sys.argv)}")
    print(
        f"# driver clickhouse-connect {clickhouse_connect.__version__} (installed); suite from {args.suite}"
    )
    print(f"# ignored: {', '.join(IGNORED)} (need a docker server, a proxy, JWT or a server catalogue)")
    print(f"# {elapsed:.0f} s on {os.cpu_count()} cores")
    print(summary.strip("= ") or "pytest printed no totals:\n" + (out + run.stderr)[-3000:])
    print("\nfailures by file:")
    for name, n in by_file.most_common():
        print(f"  {n:4d}  {name}")
    print("\nfailures:")
    for line in failed:
        print("  " + line[:240])


if __name__ == "__main__":
    main()
