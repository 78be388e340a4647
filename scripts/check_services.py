"""Stop at once, with a clear message, when a service the test suite needs is unreachable."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

SERVICES = [
    ("PostgreSQL", "DATABASE_URL", 5432),
    ("Redis (Celery broker)", "CELERY_BROKER_URL", 6379),
    ("RabbitMQ (broker tests)", "AMQP_URL", 5672),
]


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    failed = False
    for name, variable, default_port in SERVICES:
        url = os.environ.get(variable, "")
        if not url:
            continue
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or default_port
        if not reachable(host, port):
            failed = True
            print(
                f"✗ {name} is not reachable at {host}:{port} ({variable}={url}).\n"
                f"  Start it, or point {variable} at another server, e.g. "
                f"`{variable}=... make test`.",
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
