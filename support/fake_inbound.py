"""Inbound email as the fake provider would post it: Postmark's inbound webhook JSON (the format
anymail's Postmark inbound view parses), for replies, auto-replies and bounces in tests."""
from __future__ import annotations

import base64
import uuid


def postmark_inbound(*, from_email: str, to: str, subject: str, text: str, in_reply_to: str = "", references: str = "",
                     headers: dict | None = None, attachments: list[tuple[str, bytes]] | None = None,
                     return_path: str | None = None) -> dict:
    """One inbound message. `return_path` "" is a bounce's empty envelope sender."""
    all_headers = [{"Name": "Return-Path", "Value": f"<{from_email if return_path is None else return_path}>"}]
    if in_reply_to:
        all_headers.append({"Name": "In-Reply-To", "Value": in_reply_to})
    if references:
        all_headers.append({"Name": "References", "Value": references})
    all_headers += [{"Name": k, "Value": v} for k, v in (headers or {}).items()]
    all_headers.append({"Name": "Message-ID", "Value": f"<{uuid.uuid4().hex}@mail.example.net>"})
    return {
        "FromFull": {"Email": from_email, "Name": ""},
        "ToFull": [{"Email": to, "Name": ""}],
        "OriginalRecipient": to,
        "Subject": subject,
        "MessageID": str(uuid.uuid4()),
        "TextBody": text,
        "HtmlBody": f"<p>{text}</p>",
        "StrippedTextReply": text,
        "Headers": all_headers,
        "Attachments": [
            {"Name": name, "Content": base64.b64encode(data).decode(), "ContentType": "application/octet-stream",
             "ContentLength": len(data)}
            for name, data in (attachments or [])
        ],
    }
