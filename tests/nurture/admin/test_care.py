"""Staff side of the care features: the export action (Subscriber care permission, audit where it
exists), consent records and carer hand-offs on the subscriber page, the journey for a sample date."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from nurture.models import AuditEntry, CarerHandoff, ConsentRecord
from nurture.services import subscribers as services
from content.services import articles_approve
from nurture.services.library import library_import
from support.library import sample_reviewer
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff(client, *perms: str) -> User:
    user = User.objects.create_user("care", password="x", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    verified_login(client, user)
    return user


def export(client, subscriber_ids):
    return client.post(reverse("admin:nurture_subscriber_changelist"), {
        "action": "export_data", "_selected_action": [str(i) for i in subscriber_ids],
    })


def test_subscriber_care_role_holds_the_export_permission():
    assert Group.objects.get(name="Subscriber care").permissions.filter(codename="export_subscriber").exists()


def test_staff_export_is_the_same_json_and_needs_the_permission(client):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    services.subscriber_pause(subscriber_id=subscriber.pk, weeks=4, source="pause_link")
    staff(client, "nurture.view_subscriber")
    refused = export(client, [subscriber.pk])
    assert refused["Content-Type"].startswith("text/html")  # the list again: no such action for them
    client.logout()
    User.objects.all().delete()
    staff(client, "nurture.view_subscriber", "nurture.export_subscriber")
    response = export(client, [subscriber.pk])
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == "ana@example.org"
    assert [r["kind"] for r in data["consent_records"]] == ["pause"]
    # The look is in the audit trail: who, what, whose (ids only).
    entry = AuditEntry.objects.get(action="export")
    assert (entry.subscriber_id, entry.username, entry.detail) == (subscriber.pk, User.objects.get().username, "export via admin")


def test_exporting_two_at_once_is_refused_with_a_message(client):
    the_series = series("in_treatment", [(0, ["a1"])])
    a, b = active_subscriber("a@example.org", the_series), active_subscriber("b@example.org", the_series)
    staff(client, "nurture.view_subscriber", "nurture.export_subscriber")
    response = export(client, [a.pk, b.pk])
    assert response.status_code == 302
    assert any("exactly one" in str(m) for m in get_messages(response.wsgi_request))


def test_subscriber_page_shows_consent_kinds_sources_and_carer(admin_client):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    services.subscriber_pause(subscriber_id=subscriber.pk, weeks=2, source="pause_link")
    CarerHandoff.objects.create(subscriber=subscriber, carer_email="tom@example.org")
    page = admin_client.get(reverse("admin:nurture_subscriber_change", args=[subscriber.pk])).content.decode()
    assert "pause_link" in page and "tom@example.org" in page and "Paused until" in page


def test_admin_actions_are_recorded_as_staff_actions(admin_client):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    admin_client.post(reverse("admin:nurture_subscriber_changelist"), {"action": "pause", "_selected_action": [str(subscriber.pk)]})
    assert ConsentRecord.objects.get(subscriber=subscriber).source == "admin"


def test_journey_preview_shows_the_plan_for_a_sample_treatment_date(admin_client, library_dir):
    library_import(library_dir=library_dir)
    articles_approve(user=sample_reviewer())  # with DEBUG off only approved text is planned
    url = reverse("email_preview:journey")
    plain = admin_client.get(url, {"stage": "recently_diagnosed", "language": "en"}).content.decode()
    when = (timezone.localdate() + dt.timedelta(days=20)).isoformat()
    dated = admin_client.get(url, {"stage": "recently_diagnosed", "language": "en", "treatment_date": when}).content.decode()
    assert "With a treatment date of" in dated and "★" in dated
    subjects = lambda page: [s for s in ("You can usually take some time", "Why people ask for a second opinion") if s in page]  # noqa: E731
    assert subjects(plain) == subjects(dated)  # both there
    # Time to decide (before treatment) still second; the reasons step (not marked) moves after the marked ones.
    assert dated.index("Why people ask for") > dated.index("How to get copies of your records")
    assert plain.index("Why people ask for") < plain.index("How to get copies of your records")
    bad = admin_client.get(url, {"stage": "recently_diagnosed", "language": "en", "treatment_date": "soon"})
    assert bad.status_code == 200 and "YYYY-MM-DD" in bad.content.decode()
