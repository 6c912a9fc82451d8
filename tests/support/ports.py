"""The one free-port helper of the suite (servers the tests start bind to 127.0.0.1 only)."""

from __future__ import annotations

import socket


def free_port(port_range: range | None = None) -> int:
    """A 127.0.0.1 port nothing listens on: any the kernel picks, or the first free one of `port_range`
    (a suite's own range on a shared machine, e.g. tests/tools/servers.PORT_RANGE)."""
    if port_range is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for port in port_range:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {port_range}")
