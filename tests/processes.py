"""Helpers for tests that run grantflow as a separate process, the way an operator does."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any GRANTFLOW_* of its own, a data dir, and the cheapest argon2 cost."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
    env.update(
        GRANTFLOW_DATA_DIR=str(data_dir),
        GRANTFLOW_PASSWORD_TIME_COST="1",
        GRANTFLOW_PASSWORD_MEMORY_COST_KIB="8",
        **settings,
    )
    return env
