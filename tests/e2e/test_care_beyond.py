"""Care beyond the series through the public pages with a real Celery worker and beat over
real Redis and PostgreSQL, the shared stack of tests/e2e/conftest.py (a series "day" is one second).

- a bereavement stops a queued and a claimed (not yet handed over) delivery, and nothing more goes
  to the person or their carer; the carer who asked gets the one bereavement-support email."""
from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from nurture import tasks, tokens
from nurture.models import Bereavement, CarerHandoff, ConsentRecord, Delivery, Subscriber
from nurture.sending.ledger import deliveries_claim
from support.workers import wait_for
from tests.e2e.test_care import messages, sign_up_and_confirm, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.services]



@pytest.fixture
def stack(live_stack):
    """The shared worker and beat (tests/e2e/conftest.py: they have 0800 000 1111 as the bereavement-support
    line, and send check-ins to people in remission): the outbox their emails land in."""
    return live_stack


@pytest.mark.django_db
def test_a_person_can_have_one_bereavement_report_only():
    from django.db import IntegrityError, transaction

    from tests.helpers.scheduler import active_subscriber, series

    person = active_subscriber("one@example.org", series("in_remission", [(0, ["one-a"])], language="es"))
    Bereavement.objects.create(subscriber=person, source="admin")
    with pytest.raises(IntegrityError), transaction.atomic():
        Bereavement.objects.create(subscriber=person, source="carer_page")


def test_bereavement_stops_queued_and_claimed_deliveries_and_nothing_more_goes_to_either_address(stack, client):
    outbox = stack
    ana = sign_up_and_confirm(client, outbox, "ana.b@example.org")
    wait_for(lambda: messages(outbox, "ana.b@example.org")[1:], timeout=60, message="the first series email")
    prefs = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=ana.pk)}/"
    assert client.post(prefs, {"action": "carer", "carer_email": "tom.b@example.org", "mode": "as_well"}).status_code == 200
    ask = wait_for(lambda: messages(outbox, "tom.b@example.org"), timeout=60, message="the carer's confirmation email")[0]
    confirm_url = re.search(r"https://guide\.example\.org(/carer/confirm/[^/\s]+/)", text_of(ask)).group(1)
    carer_page = client.post(confirm_url)
    assert carer_page.status_code == 200
    bereavement_url = re.search(r'href="(/carer/bereavement/[^"]+/)"', carer_page.content.decode()).group(1)
    wait_for(lambda: messages(outbox, "tom.b@example.org")[1:], timeout=60, message="a series email to the carer")

    # Hold the planner off this person, then put two steps in flight: one queued, one claimed by a
    # worker (this process) that has not yet handed it to the provider.
    Subscriber.objects.filter(pk=ana.pk).update(next_send_at=timezone.now() + timezone.timedelta(days=1))
    sent_positions = set(Delivery.objects.filter(subscriber=ana).values_list("step__position", flat=True))
    free = [s for s in ana.series.steps.order_by("position") if s.position not in sent_positions][:2]
    queued = Delivery.objects.create(subscriber=ana, step=free[0])
    claimed = Delivery.objects.create(subscriber=ana, step=free[1])
    assert deliveries_claim(delivery_ids=[claimed.pk], stamp=timezone.now()) == [claimed.pk]
    counts = {a: len(messages(outbox, a)) for a in ("ana.b@example.org", "tom.b@example.org")}

    assert client.get(bereavement_url).status_code == 200
    assert client.get(bereavement_url, {"step": "confirm", "support": "yes"}).status_code == 200
    assert not Bereavement.objects.exists()  # opening the pages changes nothing
    assert client.post(bereavement_url, {"support": "yes"}).status_code == 200

    tasks.enqueue_send_batches([queued.pk, claimed.pk])  # a redelivered send task must find nothing to send
    support = wait_for(lambda: [m for m in messages(outbox, "tom.b@example.org") if "bereavement" in m["Subject"].lower()],
                       timeout=60, message="the bereavement-support email")
    assert len(support) == 1 and "0800 000 1111" in text_of(support[0])
    time.sleep(6)  # several series "days": the next steps would have been due
    assert len(messages(outbox, "ana.b@example.org")) == counts["ana.b@example.org"]
    assert len(messages(outbox, "tom.b@example.org")) == counts["tom.b@example.org"] + 1  # the support email only
    assert {Delivery.objects.get(pk=queued.pk).status, Delivery.objects.get(pk=claimed.pk).status} == {"skipped"}
    ana.refresh_from_db()
    assert ana.status == "deceased" and ana.unsubscribed_at is None
    assert CarerHandoff.objects.get(subscriber=ana).status == "stopped"
    assert ConsentRecord.objects.filter(subscriber=ana, kind="bereavement", source="carer_page").count() == 1
    assert Bereavement.objects.get(subscriber=ana).support_email_sent_at is not None


# --- replies ------------------------------------------------------------------------------------------

WEBHOOK_SECRET = "postmark-hook:correct-horse-battery"


def post_inbound(client, settings, payload) -> int:
    """The fake provider's inbound webhook post, as Postmark sends it, to the configured provider's URL."""
    import base64
    import json

    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # this process only: the web side
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "WEBHOOK_SECRET": WEBHOOK_SECRET}
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    response = client.post("/anymail/postmark/inbound/", data=json.dumps(payload), content_type="application/json",
                           HTTP_AUTHORIZATION=auth)
    return response.status_code


def test_a_reply_waits_for_a_person_pauses_the_series_and_resumes_when_handled(stack, client, settings):
    from nurture.models import Reply
    from support.fake_inbound import postmark_inbound
    from tests.helpers.staff import staff_user, verified_login

    outbox = stack
    rita = sign_up_and_confirm(client, outbox, "rita.r@example.org")
    first = wait_for(lambda: messages(outbox, "rita.r@example.org")[1:], timeout=60, message="the first series email")[0]
    ours = first["Message-ID"]
    assert Delivery.objects.filter(subscriber=rita, message_id=ours).exists()

    out_of_office = postmark_inbound(from_email="rita.r@example.org", to="replies@guide.example.org", subject="Away",
                                     text="I am out of the office.", in_reply_to=ours, headers={"Auto-Submitted": "auto-replied"})
    assert post_inbound(client, settings, out_of_office) == 200
    assert Reply.objects.get().state == "automatic"  # stored for staff, tied to nobody, not acted on
    assert Subscriber.objects.get(pk=rita.pk).status == "active"  # an auto-reply changes nothing

    question = postmark_inbound(from_email="rita.r@example.org", to="replies@guide.example.org", subject="Re: " + first["Subject"],
                                text="Can my own doctor send my records?", in_reply_to=ours)
    assert post_inbound(client, settings, question) == 200
    waiting = Reply.objects.get(subscriber=rita, state="waiting")
    assert Subscriber.objects.get(pk=rita.pk).status == "paused"
    count = len(messages(outbox, "rita.r@example.org"))
    time.sleep(6)  # the next step (a few one-second "days") would have been due: paused, nothing goes
    assert len(messages(outbox, "rita.r@example.org")) == count

    user = staff_user("care.e2e", "Subscriber care")
    verified_login(client, user)
    client.post("/admin/nurture/reply/", {"action": "mark_handled", "_selected_action": [str(waiting.pk)]})
    assert Reply.objects.get(pk=waiting.pk).state == "handled"
    assert Subscriber.objects.get(pk=rita.pk).status == "active"
    wait_for(lambda: messages(outbox, "rita.r@example.org")[count:], timeout=60, message="the next email after the reply was handled")


def test_a_stop_reply_unsubscribes_and_one_email_says_so(stack, client, settings):
    from nurture.models import Reply
    from support.fake_inbound import postmark_inbound

    outbox = stack
    sam = sign_up_and_confirm(client, outbox, "sam.s@example.org")
    first = wait_for(lambda: messages(outbox, "sam.s@example.org")[1:], timeout=60, message="the first series email")[0]
    stop = postmark_inbound(from_email="sam.s@example.org", to="replies@guide.example.org", subject="Re: " + first["Subject"],
                            text="STOP", in_reply_to=first["Message-ID"])
    assert post_inbound(client, settings, stop) == 200
    assert Subscriber.objects.get(pk=sam.pk).status == "unsubscribed"
    said = wait_for(lambda: [m for m in messages(outbox, "sam.s@example.org") if "any more emails" in m["Subject"]],
                    timeout=60, message="the one email saying the stop worked")
    assert len(said) == 1 and "replied asking us to stop" in text_of(said[0])
    count = len(messages(outbox, "sam.s@example.org"))
    time.sleep(5)
    assert len(messages(outbox, "sam.s@example.org")) == count  # nothing more
    assert Reply.objects.get(subscriber=sam).handled_by == "automatic"


# --- formats ------------------------------------------------------------------------------------------


def test_plain_text_and_larger_text_emails_through_the_real_worker(stack, client):
    outbox = stack
    people = {"pat.p@example.org": {"plain_text": "on"}, "lara.l@example.org": {"larger_text": "on"}}
    for address, choice in people.items():
        person = sign_up_and_confirm(client, outbox, address)
        wait_for(lambda a=address: messages(outbox, a)[1:], timeout=60, message="the first series email")
        prefs = f"/preferences/{tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=person.pk)}/"
        assert client.post(prefs, {"action": "timing", **choice}).status_code == 200
    counts = {a: len(messages(outbox, a)) for a in people}
    plain = wait_for(lambda: messages(outbox, "pat.p@example.org")[counts["pat.p@example.org"]:], timeout=60,
                     message="a series email after choosing plain text")[0]
    assert not plain.is_multipart() and plain.get_content_type() == "text/plain"
    body = plain.get_content()
    assert "/unsubscribe/" in body and "/preferences/" in body and "/pause/" in body  # the same links
    larger = wait_for(lambda: messages(outbox, "lara.l@example.org")[counts["lara.l@example.org"]:], timeout=60,
                      message="a series email after choosing larger text")[0]
    html = larger.get_body(preferencelist=("html",)).get_content()
    sizes = [int(s) for s in re.findall(r"font-size:\s*(\d+)px", html)]
    assert sizes and min(sizes) >= 17  # the standard layout's smallest is 14px
    assert larger.get_body(preferencelist=("plain",)) is not None  # still with its plain-text twin


# --- check-ins ----------------------------------------------------------------------------------------


def test_a_check_in_moves_a_person_to_another_stages_series_with_no_repeat(stack, client):
    outbox = stack
    remy = sign_up_and_confirm(client, outbox, "remy.c@example.org", stage="in_remission")
    checkin = wait_for(lambda: [m for m in messages(outbox, "remy.c@example.org") if m["Subject"] == "Has anything changed?"],
                       timeout=60, message="the check-in email")[0]
    urls = re.findall(r"https://guide\.example\.org(/checkin/[^/\s]+/)", text_of(checkin))
    assert len(urls) == 4 and not any(stage in url for url in urls for stage in ("in_treatment", "in_remission", "diagnosed"))
    assert client.get(urls[1]).status_code == 200
    assert Subscriber.objects.get(pk=remy.pk).stage == "in_remission"  # opening the page changes nothing
    assert client.post(urls[1]).status_code == 200  # "In treatment"
    remy.refresh_from_db()
    assert remy.stage == "in_treatment" and remy.series.stage == "in_treatment"
    assert ConsentRecord.objects.filter(subscriber=remy, kind="stage_change", source="checkin").exists()
    wait_for(lambda: Delivery.objects.filter(subscriber=remy, status="sent", step__series__stage="in_treatment").count() >= 2,
             timeout=60, message="emails from the new stage's series")
    sent = list(Delivery.objects.filter(subscriber=remy, status="sent").values_list("article_versions", flat=True))
    articles = [a for versions in sent for a in versions]
    assert len(articles) == len(set(articles))  # no article twice across both series
