"""The operating system as the embedded ClickHouse endpoint's second wall.

The endpoint's SQL policy (``infra/chdb_policy.py``) is the first wall; this module is what still
holds when a statement gets past it. chdb is clickhouse-local: it honours neither
``user_files_path`` nor ``remote_url_allow_hosts`` (measured: ``file('/tmp/x')`` reads the file
with ``user_files_path`` elsewhere, ``INTO OUTFILE`` writes even with ``readonly=1``), so the
limits are put on the process itself:

- **No secrets in the process** (:func:`clean_environment`). The engine process is started with an
  environment of a few harmless variables; its passwords arrive hashed through a pipe
  (``infra/chdb_http.py``), so ``/proc/self/environ`` and the process memory hold none.
- **Landlock** (:func:`confine`), the Linux security module that lets an unprivileged process
  restrict itself, through the ``landlockpy`` binding: after it, the process may read only the
  code it runs (Python, its packages, the system libraries) and a few ``/proc`` and ``/sys`` files
  the engine reads about itself, may write only its data and spool directories, and may neither
  connect nor bind a TCP port (its one listening socket is bound before). It applies to the
  calling thread and every thread it starts later, so it is applied before the engine starts.

On a kernel without Landlock (before 5.13, or disabled), :func:`confine` says so and returns
False: the endpoint then runs with the first wall and a clean environment only, and logs it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Confinement", "confine", "clean_environment", "SAFE_ENVIRONMENT"]

log = logging.getLogger("dozor.sandbox")

#: The only variables a confined service inherits: how to find programs and libraries, and the
#: locale and time zone. Nothing of Dozor's configuration, so no password, salt or key.
SAFE_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "VIRTUAL_ENV")

#: Files under /proc/<pid> the engine reads about itself (its stack on start, memory and limits).
#: Not environ, cmdline, mem, fd or task/: a path is readable only if named here.
_PROC_SELF = ("maps", "status", "stat", "statm", "cgroup", "mountinfo", "limits", "io", "smaps_rollup")
#: Machine-wide facts the engine sizes itself by (memory, CPUs, cgroup limits).
_SYSTEM_FACTS = (
    "/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/loadavg", "/proc/sys/kernel",
    "/proc/sys/vm", "/sys/fs/cgroup", "/sys/devices/system/cpu", "/sys/devices/system/node",
)  # fmt: skip
#: Code and system files every Python process reads.
_SYSTEM_CODE = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/nsswitch.conf",
)
#: Devices a process needs: nothing can be read from /dev/null, and /dev/urandom is randomness.
_DEVICES = ("/dev/null", "/dev/urandom", "/dev/zero")


def clean_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a confined service may see (:data:`SAFE_ENVIRONMENT`)."""
    return {k: v for k, v in environ.items() if k in SAFE_ENVIRONMENT}


@dataclass(frozen=True)
class Confinement:
    """What :func:`confine` put in place, for the log and the tests."""

    landlock_abi: int
    filesystem: bool
    network: bool

    def describe(self) -> str:
        if not self.filesystem:
            return "no Landlock on this kernel: the SQL policy and a clean environment only"
        net = "no TCP connect or bind" if self.network else "network not restricted (Landlock ABI < 4)"
        return f"Landlock ABI {self.landlock_abi}: files outside the data directory closed, {net}"


def _code_paths() -> set[Path]:
    """Where the running Python and its packages (Dozor's included) live, read-only."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    import dozor

    for mod_name in ("dozor", "dozor.infra", "dozor.streams", "dozor.dashboard", "dozor.producers"):
        mod = sys.modules.get(mod_name)
        if mod is None:
            try:
                mod = __import__(mod_name, fromlist=["_"])
            except ImportError:
                continue
        paths.update(Path(p) for p in getattr(mod, "__path__", []))
    paths.update(Path(p) for p in dozor.__path__)
    for entry in sys.path:
        # site-packages and the like, never the working directory (a checkout holds .env).
        p = Path(entry) if entry else None
        if p and p.is_dir() and ("site-packages" in p.parts or "dist-packages" in p.parts):
            paths.add(p)
    return paths


def confine(writable: Iterable[Path], readable: Iterable[Path] = ()) -> Confinement:
    """Restrict this process (the calling thread and every thread it starts from now on) to
    reading its code and ``readable``, writing ``writable``, and no TCP connect or bind.

    Call it from the main thread before any other thread starts and before the engine opens.
    """
    import landlockpy
    from landlockpy import AccessFS, AccessNet, Ruleset

    abi = landlockpy.abi_version()
    if abi < 1:
        log.warning("Landlock is not available on this kernel; the engine runs unconfined")
        return Confinement(0, False, False)
    read_dir = AccessFS.READ_FILE | AccessFS.READ_DIR
    with Ruleset() as rules:
        handled = rules.handled_fs
        read_file = AccessFS.READ_FILE & handled
        for path in sorted(_code_paths() | {Path(p) for p in _SYSTEM_CODE}):
            if path.exists():
                mode = (read_dir | AccessFS.EXECUTE) if path.is_dir() else (read_file | AccessFS.EXECUTE)
                rules.allow_path(str(path), mode & handled)
        pid = os.getpid()
        facts = [Path(f"/proc/{pid}/{name}") for name in _PROC_SELF] + [Path(p) for p in _SYSTEM_FACTS]
        for path in [*facts, *(Path(p) for p in readable)]:
            if path.exists():
                rules.allow_path(str(path), (read_dir if path.is_dir() else read_file) & handled)
        for path in _DEVICES:
            if Path(path).exists():
                rules.allow_path(path, (AccessFS.READ_FILE | AccessFS.WRITE_FILE) & handled)
        for path in writable:
            Path(path).mkdir(parents=True, exist_ok=True)
            rules.allow_path(str(path), handled)
        network = abi >= 4 and bool(rules.handled_net & (AccessNet.CONNECT_TCP | AccessNet.BIND_TCP))
        rules.restrict()
    confinement = Confinement(abi, True, network)
    log.info("engine confined: %s", confinement.describe())
    return confinement
