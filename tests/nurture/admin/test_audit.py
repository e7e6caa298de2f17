"""The audit trail: one entry per staff look at (or change to) one person's data, ids only,
append-only, shown to auditors (filterable, CSV), purged after NURTURE_AUDIT_RETENTION_DAYS."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse
from django.utils import timezone

from content.models import Article
from content.services import article_save
from nurture.models import AuditEntry, Delivery, ProviderEvent, Subscriber
from nurture.services import audit
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import AUDITORS, CONTENT_EDITORS, SUBSCRIBER_CARE, staff_user, verified_login

pytestmark = pytest.mark.django_db

EMAIL = "private.person@example.net"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world():
    for slug in ("welcome", "next"):
        article_save(article=Article(
            slug=slug, language="en", title=slug.title(), stages=["in_treatment", "in_remission"], source_section="test",
            body_markdown=f"Body of {slug}.", status=Article.Status.PUBLISHED,
        ))
    treatment = series("in_treatment", [(0, ["welcome"]), (0, ["next"])])
    series("in_remission", [(0, ["welcome"])])
    person = active_subscriber(EMAIL, treatment, first_name="Ottoline")
    delivery = Delivery.objects.create(subscriber=person, step=treatment.steps.get(position=0), status="failed",
                                       failure_reason="HTTP 503")
    return {"series": treatment, "subscriber": person, "delivery": delivery}


@pytest.fixture
def carer(client):
    user = staff_user("carer", SUBSCRIBER_CARE)
    verified_login(client, user)
    return user


def _only_entry(**match) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(**match))
    assert len(entries) == 1, entries
    return entries[0]


def _no_personal_data_in_the_trail():
    for entry in AuditEntry.objects.all():
        text = " ".join(str(v) for v in (entry.detail, entry.username, entry.action))
        assert "@example.net" not in text and "Ottoline" not in text
        assert "treatment" not in text.lower() and "remission" not in text.lower()


def test_subscriber_page_is_logged(client, carer, world):
    person = world["subscriber"]
    assert client.get(reverse("admin:nurture_subscriber_change", args=[person.pk])).status_code == 200
    entry = _only_entry(subscriber_id=person.pk)
    assert (entry.user, entry.username, entry.action, entry.delivery_id) == (carer, "carer", "view", None)
    _no_personal_data_in_the_trail()


def test_a_subscriber_search_logs_each_person_found(client, carer, world):
    person = world["subscriber"]
    client.get(reverse("admin:nurture_subscriber_changelist"))  # the plain list: no one looked up
    assert not AuditEntry.objects.exists()
    client.get(reverse("admin:nurture_subscriber_changelist"), {"q": "private.person"})
    assert _only_entry(subscriber_id=person.pk).action == "view"
    _no_personal_data_in_the_trail()


def test_preview_as_a_subscriber_is_logged_and_a_sample_preview_is_not(client, carer, world):
    person, step = world["subscriber"], world["series"].steps.get(position=0)
    client.get(reverse("email_preview:step", args=[step.pk]))
    assert not AuditEntry.objects.exists()
    client.get(reverse("email_preview:step", args=[step.pk]), {"subscriber": str(person.pk)})
    client.get(reverse("email_preview:step_html", args=[step.pk]), {"subscriber": EMAIL})
    assert AuditEntry.objects.filter(subscriber_id=person.pk, action="view").count() == 2
    client.post(reverse("email_preview:step_test_send", args=[step.pk]) + f"?subscriber={person.pk}")
    assert AuditEntry.objects.filter(subscriber_id=person.pk).count() == 3
    _no_personal_data_in_the_trail()


def test_view_as_sent_and_the_delivery_page_are_logged(client, carer, world):
    delivery = world["delivery"]
    client.get(reverse("email_preview:delivery", args=[delivery.pk]))
    client.get(reverse("email_preview:delivery_html", args=[delivery.pk]))
    client.get(reverse("admin:nurture_delivery_change", args=[delivery.pk]))
    entries = AuditEntry.objects.filter(delivery_id=delivery.pk, subscriber_id=delivery.subscriber_id, action="view")
    assert entries.count() == 3
    _no_personal_data_in_the_trail()


def test_the_delivery_list_filtered_to_a_person_is_logged(client, carer, world):
    person = world["subscriber"]
    client.get(reverse("admin:nurture_delivery_changelist"), {"status__exact": "failed"})
    assert not AuditEntry.objects.exists()  # not about one person
    client.get(reverse("admin:nurture_delivery_changelist"), {"q": EMAIL})
    client.get(reverse("admin:nurture_delivery_changelist"), {"subscriber": str(person.pk)})
    assert AuditEntry.objects.filter(subscriber_id=person.pk, action="view").count() == 2


def test_stage_change_pause_resume_and_unsubscribe_are_logged(client, carer, world):
    person = world["subscriber"]
    manage = reverse("admin:nurture_subscriber_manage", args=[person.pk])
    client.post(manage, {"operation": "change_stage", "stage": "in_remission", "language": ""})
    client.post(manage, {"operation": "pause"})
    client.post(manage, {"operation": "resume"})
    client.post(reverse("admin:nurture_subscriber_changelist"),
                {"action": "unsubscribe", "_selected_action": [person.pk], "apply": "1"})
    assert Subscriber.objects.get(pk=person.pk).status == "unsubscribed"
    changes = list(AuditEntry.objects.filter(subscriber_id=person.pk, action="change").order_by("pk").values_list("detail", flat=True))
    assert changes == ["stage change", "pause", "resume", "unsubscribe"]
    _no_personal_data_in_the_trail()


def test_requeue_is_logged_per_delivery(client, carer, world):
    delivery = world["delivery"]
    client.post(reverse("admin:nurture_delivery_changelist"),
                {"action": "requeue", "index": "0", "_selected_action": [delivery.pk]})
    entry = _only_entry(delivery_id=delivery.pk, action="change")
    assert entry.subscriber_id == delivery.subscriber_id and entry.detail == "requeue"


def test_erasure_goes_through_the_service_and_is_logged(client, carer, world):
    person = world["subscriber"]
    response = client.post(reverse("admin:nurture_subscriber_delete", args=[person.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Subscriber.objects.filter(pk=person.pk).exists()
    from nurture.models import Suppression

    assert Suppression.objects.filter(email__iexact=EMAIL).exists()  # never emailed again
    assert _only_entry(subscriber_id=person.pk, action="erase").username == "carer"


def test_provider_event_page_is_logged(client, world):
    verified_login(client, staff_user("lead", superuser=True))
    event = ProviderEvent.objects.create(provider="postmark", event_id="e1", event_type="bounced",
                                         delivery=world["delivery"], timestamp=timezone.now())
    client.get(reverse("admin:nurture_providerevent_change", args=[event.pk]))
    assert _only_entry(delivery_id=world["delivery"].pk).subscriber_id == world["subscriber"].pk


def test_audit_details_refuse_personal_data():
    user = staff_user("someone")
    for detail in ("sent to a@example.org", "stage In treatment", "in_remission", "recently diagnosed"):
        with pytest.raises(ValueError):
            audit.audit_record(user=user, action="view", subscriber_id=1, detail=detail)
    with pytest.raises(ValueError):
        audit.audit_record(user=user, action="peek", subscriber_id=1)
    assert not AuditEntry.objects.exists()


def test_the_trail_is_append_only():
    entry = audit.audit_record(user=staff_user("someone"), action="view", subscriber_id=7, detail="subscriber page")
    entry.detail = "changed"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(detail="x")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).detail == "subscriber page"


def test_the_database_refuses_updates_and_deletes_outside_the_purge(postgres):
    entry = audit.audit_record(user=None, action="view", subscriber_id=7, detail="subscriber page")
    for sql in ("UPDATE nurture_auditentry SET detail = 'x' WHERE id = %s", "DELETE FROM nurture_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).detail == "subscriber page"


def test_retention_purges_old_entries_in_the_daily_task(settings, postgres):
    settings.NURTURE_AUDIT_RETENTION_DAYS = 730
    keep = audit.audit_record(user=None, action="view", subscriber_id=1, detail="subscriber page")
    with connection.cursor() as cursor:  # an entry written 731 days ago (no UPDATE can back-date one)
        cursor.execute(
            "INSERT INTO nurture_auditentry (at, username, action, subscriber_id, detail) "
            "VALUES (%s, 'someone', 'view', 2, 'subscriber page')", [timezone.now() - timedelta(days=731)],
        )
    from nurture.tasks import purge_expired_data_task

    result = purge_expired_data_task()
    assert result["audit_entries"] == 1
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [keep.pk]


def test_auditors_filter_by_staff_user_and_subscriber_and_export_csv(client, world):
    carer, other = staff_user("carer", SUBSCRIBER_CARE), staff_user("other", SUBSCRIBER_CARE)
    audit.audit_record(user=carer, action="view", subscriber_id=11, detail="subscriber page")
    audit.audit_record(user=carer, action="change", subscriber_id=12, detail="pause")
    audit.audit_record(user=other, action="view", subscriber_id=11, delivery_id=5, detail="view as sent")
    verified_login(client, staff_user("auditor", AUDITORS))
    url = reverse("admin:nurture_auditentry_changelist")
    by_user = client.get(url, {"user__id__exact": carer.pk})
    assert {e.subscriber_id for e in by_user.context["cl"].result_list} == {11, 12}
    by_subscriber = client.get(url, {"subscriber_id": "11"})
    assert {e.username for e in by_subscriber.context["cl"].result_list} == {"carer", "other"}
    assert client.get(url, {"subscriber_id": "abc"}).status_code in (200, 302)  # a bad value: no 500
    page = client.get(url).content.decode()
    assert reverse("admin:nurture_auditentry_export") in page
    assert "Add audit entry" not in page and 'value="delete_selected"' not in page

    export = client.get(reverse("admin:nurture_auditentry_export"), {"subscriber_id": "11"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == ["id", "at", "staff user", "action", "subscriber id", "delivery id", "detail", "suppression id"]
    assert sorted((r[2], r[5]) for r in rows[1:]) == [("carer", ""), ("other", "5")]
    # Nobody changes or deletes entries in the admin, not even a superuser.
    verified_login(client, staff_user("lead", superuser=True))
    entry = AuditEntry.objects.first()
    assert client.post(reverse("admin:nurture_auditentry_change", args=[entry.pk]), {"detail": "x"}).status_code == 403
    assert client.post(reverse("admin:nurture_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 3


def test_content_editors_leave_no_trail_and_cannot_read_it(client, world):
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    step = world["series"].steps.get(position=0)
    client.get(reverse("email_preview:step", args=[step.pk]))
    assert client.get(reverse("admin:nurture_auditentry_changelist")).status_code == 403
    assert not AuditEntry.objects.exists()


def test_a_suppression_page_is_logged_under_the_subscriber_with_that_address(client, carer, world):
    from nurture.models import Suppression

    person = world["subscriber"]
    mine = Suppression.objects.create(email=EMAIL.upper(), reason="bounce")
    nobody = Suppression.objects.create(email="someone.else@example.net", reason="complaint")
    assert client.get(reverse("admin:nurture_suppression_change", args=[nobody.pk])).status_code == 200
    # No subscriber has that address: the look is recorded by the suppression row's id only.
    assert _only_entry(suppression_id=nobody.pk).subscriber_id is None
    assert client.get(reverse("admin:nurture_suppression_change", args=[mine.pk])).status_code == 200
    entry = _only_entry(subscriber_id=person.pk)
    assert (entry.detail, entry.suppression_id) == ("suppression page", mine.pk)
    _no_personal_data_in_the_trail()


def test_deleting_a_staff_account_keeps_its_entries_as_written(client, world):
    carer = staff_user("carer", SUBSCRIBER_CARE)
    entry = audit.audit_record(user=carer, action="view", subscriber_id=world["subscriber"].pk, detail="subscriber page")
    verified_login(client, staff_user("lead", superuser=True))
    response = client.post(reverse("admin:auth_user_delete", args=[carer.pk]), {"post": "yes"})
    assert response.status_code == 302
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert (kept.user_id, kept.username) == (carer.pk, "carer")
    assert client.get(reverse("admin:nurture_auditentry_change", args=[entry.pk])).status_code == 200
