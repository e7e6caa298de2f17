"""Fakes of more ESP batch APIs on 127.0.0.1, beside support/fake_provider.py (Postmark, Mailgun),
for anymail's real backends: FakeSparkPost speaks SparkPost's Transmissions API (one call, many
recipients, each with its own substitution_data, rendered with SparkPost's handlebars-style
template language); FakeResend speaks Resend's /emails and /emails/batch (whole messages); FakeMailjet
speaks Mailjet's Send API v3.1 (a Messages array of whole messages, answered per message).

Same recording and misbehaviour as the others (FakeProviderState: first_faults, bad_request_for,
latency, before_accept / after_accept hooks), so the batch tests and `make bench` drive it alike.
"""
from __future__ import annotations

import html
import json
import re
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

from support.fake_provider import Accepted, FakeProvider, FakeProviderState, _Handler

# SparkPost's template language, the part a batch send uses: {{{ key }}} inserts the value as
# given; {{ key }} inserts it HTML-escaped in the HTML part (as given elsewhere). Keys are letters,
# digits and underscores. A key the recipient lacks takes the transmission-level value, else "".
# Values are inserted once, never read again as template text.
_EXPRESSION = re.compile(r"\{\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\}|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def sparkpost_render(template: str, variables: dict, *, html_part: bool = False) -> str:
    def value(match: re.Match) -> str:
        raw_key, escaped_key = match.groups()
        found = variables.get(raw_key or escaped_key, "")
        found = found if isinstance(found, str) else json.dumps(found)
        return html.escape(found) if escaped_key and html_part else found

    return _EXPRESSION.sub(value, template)


class _SparkPostHandler(_Handler):
    """POST /api/v1/transmissions/ with JSON {content, recipients, substitution_data, metadata,
    options}; the API key in the Authorization header. Answers for the whole transmission (one
    id, accepted and rejected counts); a bad address fails the whole call with 422."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/api/v1/transmissions" or not self.headers.get("Authorization"):
            self._answer(404, {"errors": [{"message": "not found"}]})
            return
        data = json.loads(body or b"{}")
        state = self.state
        if state.latency:
            time.sleep(state.latency)
        recipients = data.get("recipients", [])
        to = [r["address"]["email"] for r in recipients]
        with state.lock:
            state.calls.append(data)
            state.requests.extend(to)
            state.request_times.extend([time.time()] * len(to))
            fault = state.first_faults.pop(0) if state.first_faults else None
        if self._answer_fault(fault, {"429": {"errors": [{"message": "Too many requests"}]},
                                      "500": {"errors": [{"message": "Internal error"}]}}):
            return
        if any(address.lower() in state.bad_request_for for address in to):
            self._answer(422,
                {"errors": [{"message": "invalid data format/type", "description": "Invalid recipient address",
                             "code": "1300"}]})
            return
        if state.before_accept is not None:
            state.before_accept(data)
        content = data.get("content", {})
        shared = data.get("substitution_data", {})
        transmission_id = str(uuid.uuid4().int)[:18]
        with state.lock:
            for recipient, address in zip(recipients, to):
                variables = {**shared, **recipient.get("substitution_data", {})}
                headers = {k: sparkpost_render(v, variables) for k, v in (content.get("headers") or {}).items()}
                text = sparkpost_render(content.get("text", ""), variables)
                rendered_html = sparkpost_render(content.get("html", ""), variables, html_part=True)
                subject = sparkpost_render(content.get("subject", ""), variables)
                state.delivered.append(
                    {"to": address, "header_to": recipient["address"].get("header_to", ""), "subject": subject,
                     "headers": headers, "text": text, "html": rendered_html,
                     "metadata": {**data.get("metadata", {}), **recipient.get("metadata", {})},
                     "options": data.get("options", {}), "campaign_id": data.get("campaign_id")}
                )
                state.accepted.append(Accepted(address, subject, headers.get("Message-ID", ""), transmission_id, text))
        if state.after_accept is not None:
            state.after_accept(data)
        self._answer(200,
            {"results": {"total_rejected_recipients": 0, "total_accepted_recipients": len(to), "id": transmission_id}})


class _FakeESP(FakeProvider):
    def anymail_settings(self) -> dict:
        """anymail_env() as Django settings for a test in this process."""
        env = self.anymail_env()
        return {"EMAIL_BACKEND": env.pop("EMAIL_BACKEND"), "ANYMAIL": {k[len("ANYMAIL_"):]: v for k, v in env.items()}}


class FakeSparkPost(_FakeESP):
    def __init__(self):
        self.state = FakeProviderState()
        handler = type("Handler", (_SparkPostHandler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def anymail_env(self) -> dict:
        """Environment for a worker subprocess: anymail's real SparkPost backend, pointed here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.sparkpost.EmailBackend",
            "ANYMAIL_SPARKPOST_API_KEY": "fake-key",
            "ANYMAIL_SPARKPOST_API_URL": f"{self.url}api/v1/",
        }


class _ResendHandler(_Handler):
    """POST /emails (one message) and /emails/batch (a JSON array of up to 100 whole messages),
    JSON, "Authorization: Bearer <key>". A batch is accepted or refused as a whole (a bad address
    anywhere: 422), and answered {"data": [{"id": ...}, ...]} in the order of the messages."""

    def _post(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.rstrip("/")
        if path not in ("/emails",
                        "/emails/batch") or not (self.headers.get("Authorization") or "").startswith("Bearer "):
            self._answer(404, {"statusCode": 404, "name": "not_found", "message": "not found"})
            return
        batch = path == "/emails/batch"
        messages = payload if batch else [payload]
        if batch and (not isinstance(payload, list) or len(payload) > 100):
            self._answer(422,
                         {"statusCode": 422, "name": "validation_error", "message": "at most 100 emails per batch"})
            return
        state = self.state
        if state.latency:
            time.sleep(state.latency)
        to = [address for message in messages for address in message.get("to", [])]
        with state.lock:
            state.calls.append(payload)
            state.requests.extend(to)
            state.request_times.extend([time.time()] * len(messages))
            fault = state.first_faults.pop(0) if state.first_faults else None
        if self._answer_fault(fault, {"429": {"statusCode": 429, "name": "rate_limit_exceeded", "message": "try later"},
                                      "500": {"statusCode": 500, "name": "internal_server_error",
                                              "message": "try later"}}):
            return
        if any(address.lower() in state.bad_request_for for address in to):
            self._answer(422, {"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field."})
            return
        ids = []
        with state.lock:
            for message in messages:
                provider_id = str(uuid.uuid4())
                ids.append(provider_id)
                headers = message.get("headers", {})
                for address in message.get("to", []):
                    state.delivered.append({"to": address, "subject": message.get("subject", ""), "headers": headers,
                                            "text": message.get("text", ""), "html": message.get("html", ""),
                                            "tags": message.get("tags", []), "provider_id": provider_id})
                    state.accepted.append(Accepted(address, message.get("subject", ""), headers.get("Message-ID", ""),
                                                   provider_id, message.get("text", "")))
        self._answer(200, {"data": [{"id": i} for i in ids]} if batch else {"id": ids[0]})


class FakeResend(_FakeESP):
    HANDLER = _ResendHandler

    def anymail_env(self) -> dict:
        """Environment for a worker subprocess: anymail's real Resend backend, pointed here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.resend.EmailBackend",
            "ANYMAIL_RESEND_API_KEY": "fake-key",
            "ANYMAIL_RESEND_API_URL": self.url,
        }


class _MailjetHandler(_Handler):
    """POST /v3.1/send (HTTP basic auth): {"Messages": [...]} of whole messages, each processed on
    its own and answered in order (anymail's single send also puts shared fields in "Globals",
    merged into every message). A message to an address in bad_request_for gets Mailjet's
    per-message error (mj-0013, invalid email) and is not sent, the others are; any error makes the
    HTTP status 400, as Mailjet answers a partial failure. More than 50 messages: a global error."""

    def _post(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/v3.1/send" or not (self.headers.get("Authorization") or "").startswith("Basic "):
            self._answer(404, {"ErrorCode": "mj-0001", "StatusCode": 404, "ErrorMessage": "not found"})
            return
        globals_, messages = payload.get("Globals") or {}, payload.get("Messages") or []
        if len(messages) > 50:
            self._answer(400, {"ErrorIdentifier": str(uuid.uuid4()), "ErrorCode": "mj-0008", "StatusCode": 400,
                               "ErrorMessage": "Messages: at most 50 items"})
            return
        state = self.state
        if state.latency:
            time.sleep(state.latency)
        messages = [{**globals_, **m} for m in messages]
        with state.lock:
            state.calls.append(payload if state.merge_bodies else {"messages": len(messages)})
            for message in messages:
                state.requests.extend(to["Email"] for to in message.get("To", []))
                state.request_times.append(time.time())
            fault = state.first_faults.pop(0) if state.first_faults else None
        if self._answer_fault(fault,
            {"429": {"ErrorIdentifier": "x", "ErrorCode": "mj-0009", "StatusCode": 429,
                     "ErrorMessage": "Too many requests"},
                                      "500": {"ErrorIdentifier": "x", "ErrorCode": "mj-0010", "StatusCode": 500,
                                              "ErrorMessage": "Internal error"}}):
            return
        answers = [self._one(message) for message in messages]
        failed = any(answer["Status"] == "error" for answer in answers)
        self._answer(400 if failed else 200, {"Messages": answers})

    def _one(self, message: dict) -> dict:
        state = self.state
        to = [r["Email"] for r in message.get("To", [])]
        if any(address.lower() in state.bad_request_for for address in to):
            return {"Status": "error", "Errors": [{
                "ErrorIdentifier": str(uuid.uuid4()), "ErrorCode": "mj-0013", "StatusCode": 400,
                "ErrorMessage": f"\"{to[0]}\" is an invalid email address.", "ErrorRelatedTo": ["To[0].Email"]}]}
        if state.before_accept is not None:
            state.before_accept(message)
        headers = message.get("Headers") or {}
        answer_to = []
        with state.lock:
            for address in to:
                provider_id = str(uuid.uuid4().int)[:17]
                answer_to.append({"Email": address, "MessageUUID": str(uuid.uuid4()), "MessageID": int(provider_id),
                                  "MessageHref": f"https://api.mailjet.com/v3/REST/message/{provider_id}"})
                state.accepted.append(Accepted(address, message.get("Subject", ""), headers.get("Message-ID", ""),
                                               provider_id,
                                               message.get("TextPart", "")))
                state.delivered.append({
                    "to": address, "subject": message.get("Subject", ""), "headers": headers,
                    "text": message.get("TextPart", "") if state.merge_bodies else "",
                    "html": message.get("HTMLPart", "") if state.merge_bodies else "",
                    "custom_id": message.get("CustomID", ""), "event_payload": message.get("EventPayload", ""),
                    "campaign": message.get("CustomCampaign", ""), "provider_id": provider_id,
                })
        if state.after_accept is not None:
            state.after_accept(message)
        return {"Status": "success", "CustomID": message.get("CustomID", ""), "To": answer_to, "Cc": [], "Bcc": []}


class FakeMailjet(_FakeESP):
    HANDLER = _MailjetHandler

    def anymail_env(self) -> dict:
        """Environment for a worker subprocess: anymail's real Mailjet backend, pointed here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.mailjet.EmailBackend",
            "ANYMAIL_MAILJET_API_KEY": "fake-key",
            "ANYMAIL_MAILJET_SECRET_KEY": "fake-secret",
            "ANYMAIL_MAILJET_API_URL": f"{self.url}v3.1/",
        }
