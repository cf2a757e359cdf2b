"""Loopback ports for the servers nnpipe starts (and its tests and benchmarks start)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port the kernel has just handed out: the kernel's ephemeral ports do
    not repeat soon, unlike a port drawn at random from a small range."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
