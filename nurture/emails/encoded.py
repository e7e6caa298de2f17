"""A provider call's JSON with the email bodies written from the JSON strings made when they were
rendered (nurture/emails/cache.py, personalise_with_json), instead of escaping the same 10 KiB of
every copy again: json.dumps spent about 0.08 ms per email of a Postmark batch there.

The builder puts `(text, its JSON string)` pairs on the message (`nurture_json`). A payload value
that IS one of those strings (the very object: a string changed or copied since is not) is marked,
the payload serialised by the provider's own serialiser, and each mark replaced by its JSON. The
marks hold a NUL character, which no email body, header or address carries; if the serialised
payload does not hold each mark exactly once, in order, it is serialised as it is instead."""
from __future__ import annotations

import re

NUL = "\x00"
_MARK = NUL + "nurture-json-{}" + NUL
# How json.dumps writes a mark (a control character is always escaped, ensure_ascii or not).
_MARK_WRITTEN = re.compile(r'"\\u0000nurture-json-(\d+)\\u0000"')

JSON_ATTR = "nurture_json"


def json_strings_of(message) -> tuple[tuple[str, str], ...]:
    """The (text, JSON string) pairs the builder left on `message`, if any."""
    return getattr(message, JSON_ATTR, ())


class Marked:
    """Marks the known strings of one or more payloads, then fills the serialised whole."""

    def __init__(self):
        self._json: list[str] = []

    def __len__(self) -> int:
        return len(self._json)  # values marked so far

    def mark(self, data: dict, known: tuple[tuple[str, str], ...]) -> dict:
        """`data`, or a copy with each top-level value that is one of `known`'s strings marked."""
        marked = data
        for key, value in data.items():
            for text, text_json in known:
                if value is text:
                    if marked is data:
                        marked = dict(data)
                    marked[key] = _MARK.format(len(self._json))
                    self._json.append(text_json)
                    break
        return marked

    def filled(self, serialised: str) -> str | None:
        """`serialised` with every mark replaced by its JSON string; None if the marks are not each
        there exactly once, in the order they were made (then serialise the unmarked payload)."""
        if not self._json:
            return serialised
        pieces = _MARK_WRITTEN.split(serialised)
        if len(pieces) != 2 * len(self._json) + 1 or any(
            int(pieces[2 * i + 1]) != i for i in range(len(self._json))
        ):
            return None
        pieces[1::2] = self._json
        return "".join(pieces)


def serialised(payloads: list[tuple[dict, object]], serialise, body=lambda datas: datas[0]) -> str:
    """serialise(body(datas)) for `payloads`' (data, message) pairs: one message's payload, or with
    `body` a provider's batch request of several; each message's bodies written from their
    rendered JSON, or the whole serialised as it is if the marks are not each found once, in order."""
    marks = Marked()
    filled = marks.filled(serialise(body([marks.mark(data, json_strings_of(message)) for data, message in payloads])))
    return serialise(body([data for data, _message in payloads])) if filled is None else filled
