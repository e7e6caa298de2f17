"""A fake email provider speaking Postmark's HTTP API on 127.0.0.1, for anymail's real Postmark
backend (ANYMAIL POSTMARK_API_URL pointed here); and FakeMailgun, speaking Mailgun's batch sending
API (one call, many recipients, %recipient.KEY% merge fields) for anymail's real Mailgun backend.

It records every message it accepts (one entry per acceptance, with our Message-ID header), and
can be told to misbehave: answer after a latency like a real provider's, answer 500 to everything
for a while (an outage), accept a message and withhold the answer (the client's read timeout),
answer the first requests with 429 / 500 / a timeout / a dropped connection, answer 400 for chosen recipients (a
permanent error), refuse chosen recipients as inactive (Postmark's 422 / ErrorCode 406), or call a hook before answering
(to kill a worker at a chosen moment). Both of Postmark's send endpoints: /email (one message) and /email/batch (up to
500 whole messages, answered one entry per message). Runs as threads in the test process; worker subprocesses reach it
over loopback.
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# The sender's EMAIL_TIMEOUT in tests against these fakes. Where no answer is withheld it is generous:
# on CI's two cores (two test processes beside the end-to-end run) an answer has taken over 0.5 s,
# and a read timeout there is a wrong "unknown", not a slow test. Where a test withholds an answer,
# the client gives up after WITHHELD_CLIENT_TIMEOUT and the fake stalls twice as long
# (FakeProvider.outwait_the_client).
CLIENT_TIMEOUT = 10.0
WITHHELD_CLIENT_TIMEOUT = 1.0


@dataclass
class Accepted:
    to: str
    subject: str
    message_id_header: str
    provider_message_id: str
    body_text: str


@dataclass
class FakeProviderState:
    # Behaviours for the first requests, in order: "429", "500", "timeout", "drop".
    first_faults: list[str] = field(default_factory=list)
    bad_request_for: set[str] = field(default_factory=set)  # -> 400
    inactive: set[str] = field(default_factory=set)  # -> 422 ErrorCode 406 (refused)
    timeout_seconds: float = 3.0  # how long a "timeout" stalls before giving up (longer than the client's)
    latency: float = 0.0  # seconds every answer takes (a real provider's round trip is 30-200 ms)
    before_accept = None  # optional callable(payload) run before a message is accepted
    after_accept = None  # optional callable(payload) run after acceptance is recorded, before answering
    accepted: list[Accepted] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)  # wall clock of each request's arrival (load figures)
    requests: list[str] = field(default_factory=list)  # recipient of every request, in arrival order
    calls: list[dict] = field(default_factory=list)  # FakeMailgun: each API call's form fields, as received
    delivered: list[dict] = field(default_factory=list)  # FakeMailgun: each recipient's message after merging
    latency_seconds: float = 0.0  # every answer waits this long (a real provider's round trip)
    fail_until: float = 0.0  # wall-clock time until which every request is answered 500 (an outage)
    withhold_for: set[str] = field(default_factory=set)  # accepted, then no answer (the client's read timeout)
    merge_bodies: bool = True  # keep (Mailgun: merge) each message's text and HTML; the benchmark turns it off
    in_flight: int = 0  # requests being answered now, and the most at once (calls overlapping)
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acceptances_by_message_id(self) -> Counter:
        with self.lock:
            return Counter(a.message_id_header for a in self.accepted)

    def requests_for(self, address: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.lower() == address.lower())


def _header(payload: dict, name: str) -> str:
    for item in payload.get("Headers") or []:
        if item.get("Name", "").lower() == name.lower():
            return item.get("Value", "")
    return ""


class _Server(ThreadingHTTPServer):
    # Senders open several connections at once (a pool of threads per worker): a listen backlog
    # of 5 (the default) would drop some, and the client would see a connect timeout.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    state: FakeProviderState
    # Headers and body are two writes: without TCP_NODELAY a kept-alive connection waits for the
    # client's delayed ACK (40 ms) before the body goes.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client is gone (a killed worker): the message stays accepted
            self.close_connection = True

    def _answer_fault(self, fault: str | None, errors: dict[str, dict]) -> bool:
        """Misbehave as told (first_faults): "429" / "500" answer `errors[fault]`, "timeout" stalls
        past the client's patience, "drop" closes without an answer; nothing is accepted. True if
        the request ends here."""
        if fault in ("429", "500"):
            self._answer(int(fault), errors[fault])
        elif fault == "timeout":
            time.sleep(self.state.timeout_seconds)  # the client gives up first
            self.close_connection = True
        elif fault == "drop":
            self.close_connection = True  # connection closed with no answer
        return fault in ("429", "500", "timeout", "drop")

    def do_POST(self):
        state = self.state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.latency_seconds:
                time.sleep(state.latency_seconds)
            self._post()
        finally:
            with state.lock:
                state.in_flight -= 1

    def _post(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.rstrip("/")
        if path not in ("/email", "/email/batch") or self.headers.get("X-Postmark-Server-Token") is None:
            self._answer(404, {"ErrorCode": 404, "Message": "unknown endpoint"})
            return
        batch = path == "/email/batch"
        if batch and (not isinstance(payload, list) or len(payload) > 500):
            self._answer(422, {"ErrorCode": 300, "Message": "A batch takes a JSON array of at most 500 messages."})
            return
        messages = payload if batch else [payload]
        state = self.state
        if state.latency:
            time.sleep(state.latency)
        with state.lock:
            state.calls.append(payload if state.merge_bodies
                               else {"messages": len(messages)})  # the bench keeps no bodies
            for message in messages:
                state.requests.append(message.get("To", ""))
                state.request_times.append(time.time())
            fault = state.first_faults.pop(0) if state.first_faults else None
            if fault is None and time.time() < state.fail_until:
                fault = "500"
        if self._answer_fault(fault, {"429": {"ErrorCode": 429, "Message": "Rate limit exceeded"},
                                      "500": {"ErrorCode": 500, "Message": "Internal server error"}}):
            return
        # Postmark's /email answers a bad message with an HTTP error; /email/batch answers 200 with
        # one entry per message, in order, each with its own ErrorCode.
        answers = [self._one(message) for message in messages]
        if any(message.get("To", "").lower() in state.withhold_for for message in messages):
            time.sleep(state.timeout_seconds)  # accepted, but the answer never comes in time
            self.close_connection = True
            return
        if batch:
            self._answer(200, [body for _status, body in answers])
        else:
            self._answer(*answers[0])

    def _one(self, payload: dict) -> tuple[int, dict]:
        """One message: accepted (recorded), or the error Postmark gives it."""
        state = self.state
        to = payload.get("To", "")
        if to.lower() in state.bad_request_for:
            return 400, {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."}
        addresses = [a.strip().lower() for a in to.split(",") if a.strip()]
        inactive = [a for a in addresses if a in state.inactive]
        if inactive and len(inactive) == len(addresses):
            return 422, {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as inactive.\n"
                f"Found inactive addresses: {', '.join(inactive)}.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint. ",
            }
        if state.before_accept is not None:
            state.before_accept(payload)
        provider_id = str(uuid.uuid4())
        with state.lock:
            state.accepted.append(
                Accepted(to, payload.get("Subject", ""), _header(payload, "Message-ID"), provider_id,
                         payload.get("TextBody", ""))
            )
            state.delivered.append({
                "to": to, "subject": payload.get("Subject", ""), "stream": payload.get("MessageStream", ""),
                "headers": {h.get("Name", ""): h.get("Value", "") for h in payload.get("Headers") or []},
                "metadata": payload.get("Metadata", {}), "tag": payload.get("Tag", ""),
                "text": payload.get("TextBody", "") if state.merge_bodies else "",
                "html": payload.get("HtmlBody", "") if state.merge_bodies else "", "provider_id": provider_id,
            })
        if state.after_accept is not None:
            state.after_accept(payload)
        # Some recipients inactive: Postmark sends to the others and says whom it left out.
        said = (f"Message OK, but will not deliver to these inactive addresses: {', '.join(inactive)}. "
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint."
                ) if inactive else "OK"
        return 200, {"To": to, "SubmittedAt": "2026-01-01T00:00:00Z", "MessageID": provider_id, "ErrorCode": 0,
                     "Message": said}


class FakeProvider:
    HANDLER = _Handler

    def __init__(self, *, keep_alive: bool = False):
        """keep_alive: answer in HTTP/1.1 and keep the connection open, as real providers do (the
        benchmark); by default HTTP/1.0, one connection per call (the tests' fault scenarios)."""
        self.state = FakeProviderState()
        attrs = {"state": self.state, "protocol_version": "HTTP/1.1" if keep_alive else "HTTP/1.0"}
        handler = type("Handler", (self.HANDLER,), attrs)
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def anymail_env(self) -> dict:
        """Environment for a worker subprocess: anymail's real Postmark backend, pointed here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "fake-token",
            "ANYMAIL_POSTMARK_API_URL": self.url,
        }

    def outwait_the_client(self, settings) -> None:
        """For a test of a withheld answer or a "timeout" fault: the client (pytest-django's
        `settings`) gives up after WITHHELD_CLIENT_TIMEOUT, and this fake stalls twice as long."""
        settings.EMAIL_TIMEOUT = WITHHELD_CLIENT_TIMEOUT
        self.state.timeout_seconds = 2 * WITHHELD_CLIENT_TIMEOUT

    def __enter__(self) -> "FakeProvider":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# --- Mailgun ---------------------------------------------------------------------------------------

_MAILGUN_VARIABLE = re.compile(r"%recipient\.([^%]+)%")


def mailgun_merge(template: str, variables: dict) -> str:
    """Mailgun's on-the-fly templating: each %recipient.KEY% replaced by the recipient's value, in
    one pass (a value is not rescanned); an unknown key becomes empty."""
    return _MAILGUN_VARIABLE.sub(lambda m: str(variables.get(m.group(1), "")), template)


class _MailgunHandler(_Handler):
    """POST /v3/<domain>/messages, form-encoded, HTTP basic auth "api:<key>". A batch call lists
    several "to" and a "recipient-variables" JSON table keyed by address; the API answers for the
    whole call (one id), and any bad address fails the whole call with 400, as Mailgun does."""

    def _post(self):
        from urllib.parse import parse_qs

        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        authorised = (self.headers.get("Authorization") or "").startswith("Basic ")
        if not re.fullmatch(r"/v3/[^/]+/messages", self.path) or not authorised:
            self._answer(404, {"message": "not found"})
            return
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            self._answer(400, {"message": "this fake takes form-encoded calls only (no attachments)"})
            return
        form = parse_qs(raw, keep_blank_values=True)
        state = self.state
        if state.latency:
            time.sleep(state.latency)
        to = form.get("to", [])
        with state.lock:
            state.calls.append(form)
            state.requests.extend(to)
            state.request_times.extend([time.time()] * len(to))  # one stamp per email: the ceiling counts emails
            fault = state.first_faults.pop(0) if state.first_faults else None
        if self._answer_fault(fault, {"429": {"message": "Rate limit exceeded"}, "500": {"message": "Internal error"}}):
            return
        if any(address.lower() in state.bad_request_for for address in to):
            self._answer(400, {"message": "'to' parameter is not a valid address. please check documentation"})
            return
        if state.before_accept is not None:
            state.before_accept(form)
        # Without recipient-variables Mailgun does no templating: the message goes as written.
        batch = "recipient-variables" in form
        table = json.loads(form["recipient-variables"][0]) if batch else {}
        merge = mailgun_merge if batch else (lambda template, variables: template)
        provider_id = f"<{uuid.uuid4()}@fake-mailgun>"
        first = lambda name: form.get(name, [""])[0]  # noqa: E731
        with state.lock:
            for address in to:
                variables = table.get(address, {})
                headers = {k[2:]: merge(v[0], variables) for k, v in form.items() if k.startswith("h:")}
                user_variables = {k[2:]: merge(v[0], variables) for k, v in form.items() if k.startswith("v:")}
                # Merging the bodies is Mailgun's work, done on its servers; the benchmark leaves it
                # out so that it does not take this machine's cores from the sender it measures.
                text, html = (merge(first("text"), variables),
                              merge(first("html"), variables)) if state.merge_bodies else ("", "")
                message_id = headers.get("Message-Id", "") or provider_id
                state.delivered.append(
                    {"to": address, "subject": first("subject"), "headers": headers, "user_variables": user_variables,
                     "text": text, "html": html, "recipient_variables": variables}
                )
                state.accepted.append(Accepted(address, first("subject"), message_id, provider_id, text))
        if state.after_accept is not None:
            state.after_accept(form)
        self._answer(200, {"id": provider_id, "message": "Queued. Thank you."})


class FakeMailgun(FakeProvider):
    HANDLER = _MailgunHandler
    SENDER_DOMAIN = "mg.example.org"

    def anymail_env(self) -> dict:
        """Environment for a worker subprocess: anymail's real Mailgun backend, pointed here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
            "ANYMAIL_MAILGUN_API_KEY": "fake-key",
            "ANYMAIL_MAILGUN_API_URL": f"{self.url}v3",
            "ANYMAIL_MAILGUN_SENDER_DOMAIN": self.SENDER_DOMAIN,
        }

    def anymail_settings(self) -> dict:
        """The same, as Django settings for a test in this process."""
        env = self.anymail_env()
        return {
            "EMAIL_BACKEND": env.pop("EMAIL_BACKEND"),
            "ANYMAIL": {k[len("ANYMAIL_"):]: v for k, v in env.items()},
        }
