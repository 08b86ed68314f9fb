"""Free loopback ports for the services a test starts (brokers, endpoints, dashboards)."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_port_pair"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port ``p`` with ``p + 1`` free too: the join worker serves its web port at the ingest's + 1.

    ``free_port`` alone left ``p + 1`` to chance, and in the ephemeral range a Kafka client's own
    connection can hold it: a join worker then died on start with "address already in use".
    """
    for _ in range(100):
        p = free_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("0.0.0.0", p))
                b.bind(("0.0.0.0", p + 1))
            except OSError:
                continue
            return p
    raise RuntimeError("no two adjacent free ports")
