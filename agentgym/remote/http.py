"""What the env server and the policy server share: background threads, JSON replies.

Both are stdlib ``ThreadingHTTPServer`` s run in daemon threads next to a worker
loop (the env server's reaper, the policy server's batcher); ``serve_forever``
blocks the caller until Ctrl-C and always frees the port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler

__all__ = ["start_threads", "block_until_interrupted", "QuietJSONHandler"]


def start_threads(
    targets: Sequence[tuple[str, Callable[[], object]]], prefix: str
) -> list[threading.Thread]:
    """Start one daemon thread per ``(name, target)``, named ``{prefix}-{name}``."""
    threads = []
    for name, target in targets:
        t = threading.Thread(target=target, daemon=True, name=f"{prefix}-{name}")
        t.start()
        threads.append(t)
    return threads


def block_until_interrupted(thread: threading.Thread, close: Callable[[], None]) -> None:
    """Wait for ``thread`` (the HTTP loop); on Ctrl-C or its end, ``close()``."""
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a timed join lets KeyboardInterrupt in
    finally:
        close()


class QuietJSONHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and replies with JSON bytes."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """A library does not print per request."""

    def send_json(self, status: int, data: bytes) -> None:
        """Send ``data`` (JSON) with ``status``; a 401 also names the Bearer scheme."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(data)
