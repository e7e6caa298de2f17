"""/metrics: behind a bearer token; the engine's state from the database, the broker and
the workers' counters in Redis; no label carries an address, a name or a stage."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from nurture import metrics
from nurture.models import Delivery
from nurture.services import planning
from nurture import sending
from support.fake_provider import CLIENT_TIMEOUT, FakeProvider
from support.workers import use_broker_in_this_process
from tests.helpers.scheduler import active_subscriber, series

TOKEN = "metrics-token-for-tests"


@pytest.mark.django_db
def test_metrics_are_off_until_a_token_is_set(client, settings):
    settings.NURTURE_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.django_db
def test_metrics_refuse_a_missing_or_wrong_token_saying_what_is_wrong(client, settings):
    settings.NURTURE_METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 403 and b"Authorization: Bearer" in missing.content
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 403 and b"does not match" in wrong.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def scrape(client) -> tuple[str, dict]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.django_db(transaction=True)
def test_metrics_report_queues_lag_stuck_sends_counters_and_no_personal_data(client, settings, redis_url, postgres):
    settings.NURTURE_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = redis_url
    use_broker_in_this_process(redis_url)
    now = timezone.now()
    the_series = series("in_treatment", [(0, ["first-article"]), (3, ["second-article"])])
    active_subscriber("waiting.person@example.org", the_series, first_name="Maria", now=now - timedelta(minutes=10))
    sent = active_subscriber("sent.person@example.org", the_series, now=now + timedelta(days=1))
    Delivery.objects.create(subscriber=sent, step=the_series.steps.get(position=0), status="sent", sent_at=now)
    Delivery.objects.create(
        subscriber=sent, step=the_series.steps.get(position=1), status="sending", sending_started_at=now - timedelta(hours=2)
    )
    # Tasks waiting: one confirmation email, two send batches (nothing consumes them here).
    from nurture.tasks import process_signup, send_deliveries_task

    process_signup.apply_async((1,), queue="service")
    send_deliveries_task.apply_async(([1],), queue="sends")
    send_deliveries_task.apply_async(([2],), queue="sends")
    # What the workers count: sends (one full minute ago: 120 of them) and provider errors.
    with time_machine.travel(now - timedelta(seconds=60), tick=False):
        metrics.count_emails_sent(120)
    metrics.count_emails_sent(1, kind="confirmation")
    metrics.count_provider_error("transient")
    metrics.count_provider_error("transient")
    metrics.count_provider_error("refused")

    text, samples = scrape(client)
    assert value(samples, "nurture_deliveries", status="sent") == 1
    assert value(samples, "nurture_deliveries", status="sending") == 1
    assert value(samples, "nurture_deliveries", status="queued") == 0
    assert value(samples, "nurture_deliveries_stuck_sending") == 1
    assert 600 <= value(samples, "nurture_planner_lag_seconds") < 700
    assert value(samples, "nurture_queue_messages", queue="service") == 1
    assert value(samples, "nurture_queue_messages", queue="sends") == 2
    assert value(samples, "nurture_queue_messages", queue="periodic") == 0
    assert value(samples, "nurture_service_emails_waiting") == 1
    assert value(samples, "nurture_broker_up") == 1
    assert value(samples, "nurture_emails_sent_total", kind="series") == 120
    assert value(samples, "nurture_emails_sent_total", kind="confirmation") == 1
    assert value(samples, "nurture_provider_errors_total", kind="transient") == 2
    assert value(samples, "nurture_provider_errors_total", kind="refused") == 1
    assert value(samples, "nurture_provider_errors_total", kind="unknown") == 0
    assert value(samples, "nurture_sends_per_second") == 2.0

    allowed = {*Delivery.Status.values, *metrics.QUEUES, *metrics.ERROR_KINDS, *metrics.EMAIL_KINDS}
    labels = {v for _name, pairs in samples for _k, v in pairs}
    assert labels <= allowed, labels - allowed
    for personal in ("@example.org", "Maria", "in_treatment", "In treatment", "waiting.person"):
        assert personal not in text


@pytest.mark.django_db
def test_planner_lag_is_zero_when_nobody_is_due(client, settings):
    settings.NURTURE_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens: the broker is reported down, not an error
    from config.celery import app

    app.conf.broker_url = settings.CELERY_BROKER_URL
    try:
        _text, samples = scrape(client)
    finally:
        app.conf.broker_url = "filesystem://"
    assert value(samples, "nurture_planner_lag_seconds") == 0
    assert value(samples, "nurture_broker_up") == 0
    assert ("nurture_service_emails_waiting", ()) not in samples


@pytest.mark.django_db
def test_the_sender_counts_sends_and_provider_errors_by_kind(settings, redis_url, fast_sending):
    settings.CELERY_BROKER_URL = redis_url
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url}
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        settings.NURTURE_BATCH_SEND = False  # one call per email: one probe meets the 500
        the_series = series("in_treatment", [(0, ["first-article"])])
        for i in range(3):
            active_subscriber(f"s{i}@example.org", the_series)
        planning.deliveries_plan_due()
        ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
        fake.state.bad_request_for = {"s0@example.org"}
        fake.state.first_faults = ["500"]
        outcome = sending.deliveries_send(delivery_ids=ids)
        sending.deliveries_send(delivery_ids=outcome.retry_ids)
    import redis

    store = redis.Redis.from_url(redis_url)
    assert int(store.hget(metrics.SENT_KEY, "series")) == 2
    assert int(store.hget(metrics.ERRORS_KEY, "transient")) == 1
    assert int(store.hget(metrics.ERRORS_KEY, "permanent")) == 1
