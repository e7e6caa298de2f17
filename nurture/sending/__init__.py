"""Sending: one home for handing series emails to the provider and keeping each delivery's state.

This is the public face: what the tasks, the admin and the other services call. Behind it, private
to the package (nothing outside imports them; tests/test_architecture.py checks):

    pipeline.py     a batch: brake, claim, re-check, build, call, record; the release after an
                    infrastructure error
    recheck.py      the claimed batch checked again just before sending (read-only)
    calls.py        one call per email, several in flight (a thread pool), the probe, the shared ceiling,
                    each pool thread's email connection (an HTTP API's kept across batches)
    http_session.py the HTTP session under an anymail connection: requests' adapter without the
                    per-request work these calls never use
    batch_calls.py  the provider's batch endpoints (merge fields; a list of messages)
    batch_flight.py a batch's calls overlapping: the next built while the one before is at the provider
    handover.py     what both ways of calling share: build each email, stamp the rows handed over,
                    record the answers, back off as a batch
    ledger.py       THE ONE WRITER of a delivery's state (claim, stamp, settle, release, mark sent,
                    back off, the reconciler's requeue / unknown / expiry, staff requeue, cancel)
    journal.py      accepted answers kept on local disk while the database is away (a leaf: plain data)
    db_retry.py     which errors are our infrastructure's, and a write run again through a lost connection
    signals.py      what sending tells the rest of the engine (a carer's address refused)

docs/scheduler.md tells the whole story of a delivery.
"""
from nurture.sending.calls import provider_health
from nurture.sending.db_retry import infrastructure_errors
from nurture.sending.handover import BatchOutcome, retry_countdown
from nurture.sending.ledger import (
    ANSWERABLE,
    answers_journal_pending,
    answers_journal_replay,
    deliveries_cancel_unsent,
    deliveries_expire_unknown,
    deliveries_mark_sent,
    deliveries_mark_unknown,
    deliveries_requeue,
    deliveries_requeue_unhanded,
    delivery_settle_unknown,
)
from nurture.sending.pipeline import deliveries_send
from nurture.sending.signals import carer_address_refused

__all__ = [
    "ANSWERABLE",
    "BatchOutcome",
    "answers_journal_pending",
    "answers_journal_replay",
    "carer_address_refused",
    "deliveries_cancel_unsent",
    "deliveries_expire_unknown",
    "deliveries_mark_sent",
    "deliveries_mark_unknown",
    "deliveries_requeue",
    "deliveries_requeue_unhanded",
    "deliveries_send",
    "delivery_settle_unknown",
    "infrastructure_errors",
    "provider_health",
    "retry_countdown",
]
