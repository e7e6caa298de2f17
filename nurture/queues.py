"""Celery's queue names and task names, in one place (as GOV.UK Notify's QueueNames and TaskNames).

tasks.py registers each task under its TaskNames value; config/settings.py routes them to queues
(CELERY_TASK_ROUTES) and declares QueueNames.all(); the beat schedule (services/schedule.py) and
/metrics name them from here. Plain constants, no Django: the settings import this module."""
from __future__ import annotations


class QueueNames:
    # Series email batches (the bulk of the work).
    SENDS = "sends"
    # Service emails: one email to one person because of something they did or that happened to them
    # (the sign-up confirmation or "already subscribed", new links, bereavement support, the reply to a
    # "stop" reply), under NURTURE_SERVICE_EMAILS_PER_HOUR. Carer hand-off emails have their own queue.
    SERVICE = "service"
    # Carer hand-off emails (the carer's confirmation, the subscriber's notices), under
    # NURTURE_CARER_EMAILS_PER_HOUR: they can never delay a sign-up's confirmation.
    CARERS = "carers"
    # Beat's work: plan, reconcile, purge, results summary, check-ins, review reminders.
    PERIODIC = "periodic"

    @classmethod
    def all(cls) -> tuple[str, ...]:
        return (cls.SERVICE, cls.SENDS, cls.PERIODIC, cls.CARERS)


class TaskNames:
    # sends
    SEND_DELIVERIES = "nurture.send_deliveries"
    # service
    PROCESS_SIGNUP = "nurture.process_signup"
    SEND_NEW_LINKS = "nurture.send_new_links"
    SEND_BEREAVEMENT_SUPPORT_EMAIL = "nurture.send_bereavement_support_email"
    SEND_REPLY_STOP_EMAIL = "nurture.send_reply_stop_email"
    # carers
    SEND_CARER_CONFIRMATION_EMAIL = "nurture.send_carer_confirmation_email"
    SEND_CARER_NOTICE = "nurture.send_carer_notice"
    # periodic
    PLAN_DUE_DELIVERIES = "nurture.plan_due_deliveries"
    RECONCILE_DELIVERIES = "nurture.reconcile_deliveries"
    PURGE_EXPIRED_DATA = "nurture.purge_expired_data"
    RESULTS_SUMMARISE = "nurture.results_summarise"
    SEND_CHECKINS = "nurture.send_checkins"
    REVIEW_REMINDERS = "nurture.review_reminders"


# Which queue each task goes to (config/settings.py's CELERY_TASK_ROUTES reads it).
TASK_QUEUES = {
    TaskNames.SEND_DELIVERIES: QueueNames.SENDS,
    TaskNames.PROCESS_SIGNUP: QueueNames.SERVICE,
    TaskNames.SEND_NEW_LINKS: QueueNames.SERVICE,
    TaskNames.SEND_BEREAVEMENT_SUPPORT_EMAIL: QueueNames.SERVICE,
    TaskNames.SEND_REPLY_STOP_EMAIL: QueueNames.SERVICE,
    TaskNames.SEND_CARER_CONFIRMATION_EMAIL: QueueNames.CARERS,
    TaskNames.SEND_CARER_NOTICE: QueueNames.CARERS,
    TaskNames.PLAN_DUE_DELIVERIES: QueueNames.PERIODIC,
    TaskNames.RECONCILE_DELIVERIES: QueueNames.PERIODIC,
    TaskNames.PURGE_EXPIRED_DATA: QueueNames.PERIODIC,
    TaskNames.RESULTS_SUMMARISE: QueueNames.PERIODIC,
    TaskNames.SEND_CHECKINS: QueueNames.PERIODIC,
    TaskNames.REVIEW_REMINDERS: QueueNames.PERIODIC,
}
