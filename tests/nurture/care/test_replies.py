"""Replies reach a person: inbound mail through the configured provider's inbound webhook (behind the
secret), matched to one of our emails; auto-replies ignored; "stop" unsubscribes with one email; the
series pauses while a reply waits and resumes when staff mark it handled; the Replies queue needs its
permission and every look is audited; bad payloads are refused and never acted on."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.utils import timezone

from nurture.models import AuditEntry, ConsentRecord, Delivery, Reply, Subscriber
from nurture.services import replies as services
from nurture.services.retention import expired_data_purge
from support.fake_inbound import postmark_inbound
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import signed_in_with_permissions

pytestmark = pytest.mark.django_db

URL = "/anymail/postmark/inbound/"
SECRET = "postmark-hook:correct-horse-battery"
OUR_ID = "<abc123.delivery@guide.example.org>"


@pytest.fixture(autouse=True)
def inbound_settings(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "WEBHOOK_SECRET": SECRET}
    settings.NURTURE_REPLY_PAUSES_SERIES = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def auth(secret: str = SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


@pytest.fixture
def ana():
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"]), (3, ["a2"])]))
    Delivery.objects.create(subscriber=subscriber, step=subscriber.series.steps.get(position=0), status="sent",
                            message_id=OUR_ID, sent_at=timezone.now())
    return subscriber


def post(client, payload, **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", **{**auth(), **extra})


def reply(text="Thank you, I have a question about my appointment.", *, sender="ana@example.org", **extra):
    return postmark_inbound(from_email=sender, to="replies@guide.example.org", subject="Re: Welcome", text=text,
                            in_reply_to=extra.pop("in_reply_to", OUR_ID), **extra)


def test_a_reply_waits_in_the_queue_and_pauses_the_series(client, ana):
    response = post(client, reply(attachments=[("scan.pdf", b"%PDF-1.4 private")]))
    assert response.status_code == 200
    stored = Reply.objects.get()
    assert (stored.state, stored.subscriber_id, stored.paused_series) == ("waiting", ana.pk, True)
    assert "question about my appointment" in stored.text and "PDF" not in stored.text  # attachments dropped
    ana.refresh_from_db()
    assert ana.status == "paused" and ana.paused_until is None
    assert ConsentRecord.objects.filter(subscriber=ana, kind="pause", source="reply").exists()


def test_matched_through_references_too_and_only_from_the_address_we_wrote_to(client, ana):
    post(client, reply(in_reply_to="", references=f"<other@x.org> {OUR_ID}"))
    assert Reply.objects.get().state == "waiting"
    post(client, reply(sender="stranger@example.net"))
    assert Reply.objects.filter(state="unmatched").count() == 1
    post(client, reply(in_reply_to="<never-sent@guide.example.org>"))
    assert Reply.objects.filter(state="unmatched").count() == 2
    assert Reply.objects.filter(state="unmatched", subscriber__isnull=False).count() == 0


def test_no_pause_when_the_setting_is_off(client, ana, settings):
    settings.NURTURE_REPLY_PAUSES_SERIES = False
    post(client, reply())
    assert Reply.objects.get().state == "waiting"
    assert Subscriber.objects.get(pk=ana.pk).status == "active"


@pytest.mark.parametrize("extra", [
    {"headers": {"Auto-Submitted": "auto-replied"}},
    {"headers": {"X-Autoreply": "yes"}},
    {"headers": {"Precedence": "auto_reply"}},
    {"return_path": ""},  # a bounce: empty envelope sender
])
def test_automatic_replies_are_recognised_and_ignored(client, ana, extra):
    assert post(client, reply("I am out of the office until Monday.", **extra)).status_code == 200
    stored = Reply.objects.get()
    assert stored.state == "automatic" and stored.text == ""
    assert Subscriber.objects.get(pk=ana.pk).status == "active"


@pytest.mark.parametrize("text", ["STOP", "Unsubscribe please?".replace(" please?", ""), "¡Baja!", "darme de baja\n\n> quoted"])
def test_a_stop_reply_unsubscribes_and_says_so_in_one_email(client, ana, text, django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks() as callbacks:
        post(client, reply(text))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the worker's provider, here
    for callback in callbacks:
        callback()
    ana.refresh_from_db()
    assert ana.status == "unsubscribed"
    assert ConsentRecord.objects.filter(subscriber=ana, kind="unsubscribe", source="reply").exists()
    assert Reply.objects.get().state == "stop"
    [message] = mail.outbox
    assert message.to == ["ana@example.org"] and "replied asking us to stop" in message.body
    assert not services.reply_stop_email_send(reply_id=Reply.objects.get().pk)  # once


def test_stop_inside_a_longer_message_is_a_question_for_a_person(client, ana):
    post(client, reply("Should I stop taking my tablets before the second opinion?"))
    assert Reply.objects.get().state == "waiting"
    assert Subscriber.objects.get(pk=ana.pk).status == "paused"


def test_unauthenticated_malformed_oversized_and_duplicate_payloads(client, ana, settings):
    assert post(client, reply(), **auth("postmark-hook:wrong")).status_code == 400
    assert post(client, "{not json").status_code == 400
    assert post(client, {"RecordType": "Bounce", "ID": 1}).status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    assert post(client, reply("x" * 20_000)).status_code == 400
    assert not Reply.objects.exists() and Subscriber.objects.get(pk=ana.pk).status == "active"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
    payload = reply()
    assert post(client, payload).status_code == 200 and post(client, payload).status_code == 200
    assert Reply.objects.count() == 1  # the same webhook delivered twice is stored once
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token"}
    assert post(client, reply()).status_code == 404  # no secret: no webhook at all


def test_long_text_is_cut_and_never_logged(client, ana, caplog):
    post(client, reply("Private words. " + "y" * 30_000))
    assert len(Reply.objects.get().text) == services.MAX_TEXT
    assert "Private words" not in caplog.text and "ana@example.org" not in caplog.text


# --- staff --------------------------------------------------------------------------------------------


def staff(client, *perms):
    return signed_in_with_permissions(client, *perms)


def test_subscriber_care_role_holds_the_reply_permission():
    assert Group.objects.get(name="Subscriber care").permissions.filter(codename="handle_reply").exists()


def test_queue_needs_the_permission_shows_text_escaped_and_audits_each_look(client, ana):
    post(client, reply("<script>alert(1)</script> help"))
    stored = Reply.objects.get()
    staff(client, "nurture.view_subscriber")
    assert client.get("/admin/nurture/reply/").status_code == 403
    client.logout()
    User.objects.all().delete()
    staff(client, "nurture.handle_reply")
    assert client.get("/admin/nurture/reply/").status_code == 200
    page = client.get(f"/admin/nurture/reply/{stored.pk}/change/")
    body = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; help" in body and "<script>alert(1)" not in body
    details = set(AuditEntry.objects.filter(subscriber_id=ana.pk, action="view").values_list("detail", flat=True))
    assert details == {"replies queue", "reply"}


def test_marking_handled_resumes_the_series_and_is_audited(client, ana):
    post(client, reply())
    staff(client, "nurture.handle_reply")
    stored = Reply.objects.get()
    client.post("/admin/nurture/reply/", {"action": "mark_handled", "_selected_action": [str(stored.pk)]})
    stored.refresh_from_db()
    assert stored.state == "handled" and stored.handled_by == "carol"
    ana.refresh_from_db()
    assert ana.status == "active"
    assert ConsentRecord.objects.filter(subscriber=ana, kind="resume", source="reply_handled").exists()
    assert AuditEntry.objects.filter(subscriber_id=ana.pk, action="change", detail="reply marked handled").exists()


def test_handled_does_not_resume_a_pause_the_person_chose_since(client, ana):
    from nurture.services import subscribers

    post(client, reply())
    subscribers.subscriber_pause(subscriber_id=ana.pk, weeks=4, source="pause_link")
    user = staff(client, "nurture.handle_reply")
    services.reply_mark_handled(reply_id=Reply.objects.get().pk, user=user)
    assert Subscriber.objects.get(pk=ana.pk).status == "paused"


def test_overview_shows_replies_waiting(client, ana):
    post(client, reply())
    staff(client, "nurture.view_overview")
    page = client.get("/admin/nurture/overview/").content.decode()
    assert "Replies waiting for a person: 1" in page and 'id="oldest-reply"' in page


def test_retention_purges_old_replies_but_keeps_one_still_waiting(client, ana, settings):
    post(client, reply())
    post(client, reply("I am away", headers={"Auto-Submitted": "auto-replied"}))
    later = timezone.now() + dt.timedelta(days=settings.NURTURE_REPLY_RETENTION_DAYS + 1)
    assert expired_data_purge(now=later).replies == 1
    assert list(Reply.objects.values_list("state", flat=True)) == ["waiting"]


def test_reply_to_header_when_the_organisation_sets_a_reply_address(ana, settings):
    from nurture.emails.messages import build_step_email

    settings.NURTURE_REPLY_ADDRESS = "replies@guide.example.org"
    message = build_step_email(step=ana.series.steps.get(position=0), subscriber=ana, to=ana.email)
    assert message.reply_to == ["replies@guide.example.org"]


def test_download_my_data_includes_their_replies_and_choices(client, ana):
    from nurture.export import subscriber_export

    post(client, reply("A question of mine"))
    data = subscriber_export(subscriber_id=ana.pk)
    assert [r["text"] for r in data["replies"]] == ["A question of mine"]
    assert data["profile"]["plain_text"] is False and data["profile"]["quiet_days"] == ""
