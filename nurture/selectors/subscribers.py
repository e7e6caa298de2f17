"""Reads about subscribers: who they are by address, who is due, whether an address may be written
to, and who gets a copy of their series emails. Every address gets its own copy (its own Delivery,
built for it): the subscriber's own, and the copy of the carer they handed their emails to once the
hand-off is in force (services/carers.py) - as well as theirs, or instead of it."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from content.models import Stage
from nurture import tokens
from nurture.addresses import mailbox_of
from nurture.dialect import one_of
from nurture.models import Bereavement, CarerHandoff, SignupRequest, Subscriber, Suppression


def with_address(queryset: QuerySet, email: str) -> QuerySet:
    """Rows whose email matches case-insensitively, through the Lower("email") unique indexes
    (email__iexact compiles to UPPER(...) on PostgreSQL and could not use them)."""
    return queryset.alias(email_lower=Lower("email")).filter(email_lower=email.strip().lower())


def subscriber_by_email(*, email: str) -> Subscriber | None:
    return with_address(Subscriber.objects.all(), email).first()



def subscribers_due(*, now: datetime) -> QuerySet[Subscriber]:
    """The planner's due query (served by the partial index subscriber_due_idx)."""
    return (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, next_send_at__lte=now)
        .order_by("next_send_at")
        .only(
            "id", "series_id", "next_step_position", "next_send_at", "cadence", "time_zone", "confirmed_at",
            "last_sent_at",
            "treatment_date", "welcome_back_due", "quiet_days", "time_of_day",
        )
    )


def oldest_due_send_time(*, now: datetime) -> datetime | None:
    """When the longest-waiting due subscriber became due (the planner's lag; /metrics)."""
    return subscribers_due(now=now).values_list("next_send_at", flat=True).first()


def checkin_interval(stage: str) -> timedelta | None:
    weeks = settings.NURTURE_CHECKIN_WEEKS.get(stage, 0)
    return timedelta(seconds=weeks * 7 * settings.NURTURE_DAY_SECONDS) if weeks else None


def subscribers_checkin_due(*, now: datetime) -> QuerySet[Subscriber]:
    """Active subscribers owed a check-in: their stage's interval has passed since the last one (or
    since they confirmed), or their series has run out and no check-in came within the interval."""
    due = Q(pk__in=[])
    for stage in Stage.values:
        interval = checkin_interval(stage)
        if interval is None:
            continue
        cutoff = now - interval
        not_lately = Q(last_checkin_at__isnull=True) | Q(last_checkin_at__lte=cutoff)
        owed = Q(last_checkin_at__lte=cutoff) | Q(last_checkin_at__isnull=True, confirmed_at__lte=cutoff) | Q(
            next_send_at__isnull=True, last_sent_at__isnull=False)  # the series ran out
        due |= Q(stage=stage) & not_lately & owed
    return Subscriber.objects.filter(due, status=Subscriber.Status.ACTIVE).order_by("pk")


def confirmation_awaits(*, subscriber: Subscriber, request_id: int | None) -> bool:
    """Would this confirmation link still confirm something? Its sign-up request is open (not
    applied or superseded) for a pending or unsubscribed subscriber; a link without a request
    (made before sign-up requests) only for a pending one."""
    if request_id is None:
        return subscriber.status == Subscriber.Status.PENDING
    return subscriber.status in (Subscriber.Status.PENDING,
                                 Subscriber.Status.UNSUBSCRIBED) and SignupRequest.objects.filter(
        pk=request_id, subscriber_id=subscriber.pk, state=SignupRequest.State.CONFIRM
    ).exists()


def subscriber_bereavement_reported(*, subscriber_id: int) -> bool:
    return Bereavement.objects.filter(subscriber_id=subscriber_id).exists()


def is_suppressed(*, email: str) -> bool:
    """Is its mailbox suppressed, under any spelling (`gone+again@`, `"gone"@`: nurture.addresses)?"""
    return Suppression.objects.filter(mailbox=mailbox_of(email)).exists()


def suppressed_among(*, emails: list[str]) -> set[str]:
    """Which of these addresses (lower-cased, as given) reach a suppressed mailbox, in one query."""
    by_mailbox = defaultdict(set)
    for email in emails:
        by_mailbox[mailbox_of(email)].add(email.strip().lower())
    if not by_mailbox:
        return set()
    among = one_of("mailbox", list(by_mailbox), kind="text")
    hits = Suppression.objects.filter(among).values_list("mailbox", flat=True)
    return {email for mailbox in hits for email in by_mailbox[mailbox]}


# --- carers: who gets a copy besides (or instead of) the subscriber ---------------------------------


def open_carer_handoff(*, subscriber_id: int) -> CarerHandoff | None:
    """The hand-off in play (waiting for a confirmation, or in force), if any: at most one."""
    return CarerHandoff.objects.filter(
        subscriber_id=subscriber_id, status__in=[CarerHandoff.Status.PENDING, CarerHandoff.Status.ACTIVE]
    ).first()


@dataclass(frozen=True, slots=True)
class CarerCopy:
    """A hand-off in force, as the planner needs it: whose copy to add, and whether the
    subscriber's own copy goes too."""

    handoff_id: int
    instead: bool


def carers_in_force(*, subscriber_ids: list[int]) -> dict[int, CarerCopy]:
    """subscriber id -> the carer copy their next email gets, for a whole planning batch: one
    query, two when someone has a carer. A carer address that has since bounced or complained is
    left out (the subscriber's own copy goes instead). The ids go as one array (one_of): an IN list
    of a batch's 500 cost the ORM and psycopg more than the query itself."""
    rows = list(
        CarerHandoff.objects.filter(one_of("subscriber_id", subscriber_ids), status=CarerHandoff.Status.ACTIVE)
        .values_list("subscriber_id", "pk", "mode", "carer_email")
    )
    suppressed = suppressed_among(emails=[row[3] for row in rows]) if rows else set()
    return {
        subscriber_id: CarerCopy(handoff_id=pk, instead=mode == CarerHandoff.Mode.INSTEAD)
        for subscriber_id, pk, mode, email in rows
        if email.strip().lower() not in suppressed
    }


# --- what a link in an email names (tokens are opaque and purpose-bound: nurture/tokens.py) -------------
# Each raises tokens.TokenError for a bad link, including one whose subscriber or hand-off is gone.


def subscriber_from_token(*, purpose: str, token: str) -> Subscriber:
    return subscriber_and_extra_from_token(purpose=purpose, token=token)[0]


def subscriber_and_extra_from_token(*, purpose: str, token: str) -> tuple[Subscriber, str]:
    """The subscriber a link names and what else it carries (a confirmation link's sign-up request
    id, a check-in button's answer; "" for most links)."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise tokens.TokenRevoked()
    return subscriber, extra


def carer_handoff_from_token(*, purpose: str, token: str) -> CarerHandoff:
    """The hand-off a carer's link (or the subscriber's carer notice) names, with its subscriber."""
    subscriber_id, extra = tokens.read_token(purpose=purpose, token=token)
    if not extra.isdigit():
        raise tokens.TokenError()
    handoff = CarerHandoff.objects.select_related("subscriber").filter(pk=int(extra),
                                                                       subscriber_id=subscriber_id).first()
    if handoff is None:
        raise tokens.TokenError()
    return handoff
