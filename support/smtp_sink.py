"""An SMTP server on a free loopback port that keeps every message it receives (aiosmtpd's protocol,
run on its own event loop thread). For tests and scripts that exercise Django's real SMTP backend:

    with SmtpSink() as sink:
        env["EMAIL_HOST"], env["EMAIL_PORT"] = "127.0.0.1", str(sink.port)
        ...
        message = sink.wait_for(lambda m: m["To"] == "a@example.org", timeout=60)
"""
from __future__ import annotations

import asyncio
import email
import threading
import time
from email import policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP


class _Keep:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.sink.lock:
            self.sink.messages.append(message)
        return "250 Message accepted"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-sink", daemon=True)

    def start(self) -> "SmtpSink":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(lambda: SMTP(_Keep(self), hostname="sink.invalid"), self.host, 0), self._loop
        )
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, predicate, *, timeout: float, what: str = "an email") -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received():
                if predicate(message):
                    return message
            time.sleep(0.2)
        subjects = [m["Subject"] for m in self.received()]
        raise TimeoutError(f"no {what} at the SMTP sink within {timeout}s (received: {subjects})")
