"""The durable fallback for a provider's "accepted": a local journal, replayed when the database answers.

The sender writes the provider's answer in one UPDATE straight after the call, retrying a lost
database connection a few times (db_retry.with_db_retry). If the database still cannot be
written, the answer must not die with the process: it is appended here, one JSON line per accepted
delivery, fsync'ed, in a file per worker process under NURTURE_JOURNAL_DIR. Every send task and
every reconciler run replays the journal first (ledger.answers_journal_replay): each entry marks
its delivery sent with its provider id, by the same writer as a live answer
(ledger.deliveries_record_sent, idempotent), and the file is emptied once applied.

A leaf: it stores and hands back plain data (dicts and datetimes) and imports nothing of the
engine; what an entry means is the ledger's business.

So an email the provider accepted, and we heard about, ends `sent` even when PostgreSQL was away
for longer than the retries; if the machine itself is lost with its journal, the row waits as
`unknown` for the provider's webhook (docs/scheduler.md). The directory must be on a disk that
outlives the worker container (a volume), like the database.

Concurrency: a writer appends under an exclusive flock; a replayer takes the same lock, applies,
truncates. Files are never unlinked, so an append never lands in a file nobody reads.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)

SUFFIX = ".jsonl"


def journal_dir() -> Path:
    return Path(settings.NURTURE_JOURNAL_DIR)


def _own_file() -> Path:
    return journal_dir() / f"answers-{socket.gethostname()}-{os.getpid()}{SUFFIX}"


def answers_journal_write(*, answers: list[dict], sent_at: datetime) -> Path:
    """Append accepted answers ({"delivery_id", "subscriber_id", "provider_message_id",
    "article_versions"}) durably. Raises only if the disk itself fails."""
    path = _own_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({**answer, "sent_at": sent_at.isoformat()}, sort_keys=True) + "\n" for answer in answers)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    logger.error("database unavailable: %d provider answers kept in the journal %s", len(answers), path.name)
    return path


def pending_files() -> list[Path]:
    folder = journal_dir()
    if not folder.is_dir():
        return []
    return [p for p in folder.glob(f"*{SUFFIX}") if p.stat().st_size > 0]


def answers_journal_replay(*, apply) -> int:
    """Hand every journalled answer to `apply(answers, sent_at)` (answers: the dicts written, one
    call per sent_at), then empty the file; returns how many entries were applied. A file whose
    lock is held (being written or replayed elsewhere) is left for the next run. Errors of `apply`
    propagate (the entries stay in the file)."""
    applied = 0
    for path in pending_files():
        with open(path, "r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            try:
                by_time: dict[str, list[dict]] = {}
                for line in handle.read().splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:  # a line cut short by a crash mid-write: its answer never completed
                        logger.warning("journal %s: skipping an unreadable line", path.name)
                        continue
                    by_time.setdefault(entry.pop("sent_at"), []).append(entry)
                for sent_at, answers in by_time.items():
                    apply(answers, parse_datetime(sent_at))
                    applied += len(answers)
                handle.seek(0)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    if applied:
        logger.warning("journal replayed: %d provider answers recorded", applied)
    return applied
