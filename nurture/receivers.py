"""Signal receivers, connected in NurtureConfig.ready(): thin interfaces over the services."""
from __future__ import annotations

import logging

from anymail.signals import inbound, tracking
from django.db import DatabaseError, transaction
from django.dispatch import receiver

from content.signals import article_approved
from nurture import sending, tasks
from nurture.models import AuditEntry
from nurture.services import audit, carers, replies, webhooks

logger = logging.getLogger(__name__)


@receiver(tracking, dispatch_uid="nurture.provider_tracking_event")
def provider_tracking_event(sender, event, esp_name, **kwargs):
    try:
        webhooks.tracking_event_record(provider=esp_name or "", event=event, notify=tasks.enqueue_carer_notice)
    except DatabaseError:
        raise  # the database is unwell: a 500 makes the provider deliver the webhook again later
    except Exception as exc:  # an odd event must not turn into a 500 and endless redeliveries
        # The type only: the message may quote the payload, which holds an address.
        logger.error("provider event could not be recorded provider=%s error=%s", esp_name, type(exc).__name__)


@receiver(inbound, dispatch_uid="nurture.provider_inbound_message")
def provider_inbound_message(sender, event, esp_name, **kwargs):
    try:
        replies.reply_receive(provider=esp_name or "", event=event, enqueue_stop_email=tasks.enqueue_reply_stop_email)
    except DatabaseError:
        raise  # the database is unwell: a 500 makes the provider deliver the webhook again later
    except Exception as exc:  # an odd message must not turn into a 500 and endless redeliveries
        # The type only: the message may quote the payload, which holds an address and the text.
        logger.error("inbound message could not be recorded provider=%s error=%s", esp_name, type(exc).__name__)


@receiver(article_approved, dispatch_uid="nurture.article_approved_audit")
def article_approved_audit(sender, article, version, user, **kwargs):
    """A clinical approval is in the audit trail: who, when (the entry's time), which text, next review."""
    audit.audit_record(
        user=user, action=AuditEntry.Action.APPROVE, article_id=article.pk,
        # The article is named by its id (article_id): a slug may spell a stage, which an audit detail never does.
        detail=(
            f"approved article v{version.version} ({article.language}), next review "
            f"{article.next_review_on.isoformat()}"
        ),
    )


@receiver(sending.carer_address_refused, dispatch_uid="nurture.carer_address_refused")
def carer_refused_ends_the_hand_off(sender, handoff_id, **kwargs):
    """The provider refused a carer's address at send time: as a carer's bounce, the hand-off ends
    (an "instead of me" subscriber gets their own emails again) and the subscriber is told."""
    try:
        with transaction.atomic():
            carers.carer_address_failed(handoff_id=handoff_id, complaint=False, notify=tasks.enqueue_carer_notice,
                                        source="provider_refused")
    except DatabaseError as exc:  # the suppression stands; staff see the hand-off in the admin
        logger.error("carer hand-off not ended after a refusal handoff=%s error=%s", handoff_id, type(exc).__name__)
