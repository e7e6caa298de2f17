"""Staff lookups leave a trace, and no admin list query string is a 500: the subscriber and suppression lists take only their declared filters and search, and
each narrowed, reordered or paged list writes one audit entry per person (or suppression row) shown."""
from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from content.models import Article
from content.services import article_save
from nurture.models import AuditEntry, Delivery, ProviderEvent, Subscriber, Suppression
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import AUDITORS, SUBSCRIBER_CARE, staff_user, verified_login
from tests.nurture.admin.test_audit import carer  # noqa: F401  (the fixture: subscriber care, signed in)

pytestmark = pytest.mark.django_db

EMAIL = "private.person@example.net"
SUBSCRIBERS = reverse("admin:nurture_subscriber_changelist")
SUPPRESSIONS = reverse("admin:nurture_suppression_changelist")
DELIVERIES = reverse("admin:nurture_delivery_changelist")


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world():
    article_save(article=Article(
        slug="welcome", language="en", title="Welcome", stages=["recently_diagnosed"], source_section="test",
        body_markdown="Body.", status=Article.Status.PUBLISHED,
    ))
    diagnosed = series("recently_diagnosed", [(0, ["welcome"])])
    person = active_subscriber(EMAIL, diagnosed, first_name="Ottoline")
    Subscriber.objects.filter(pk=person.pk).update(treatment_date=date(2027, 3, 15))
    others = [active_subscriber(f"other{i}@example.org", diagnosed) for i in range(3)]
    delivery = Delivery.objects.create(subscriber=person, step=diagnosed.steps.get(position=0), status="sent",
                                       sent_at=timezone.now())
    return {"subscriber": person, "others": others, "delivery": delivery}


@pytest.mark.parametrize("params", [
    {"email": EMAIL},
    {"email__iexact": EMAIL.upper()},
    {"id": "1"},
    {"pk": "1"},
    {"id__in": "1,2"},
    {"first_name": "Ottoline"},
    {"first_name__startswith": "Ott"},
    {"treatment_date__gte": "2027-03-01"},
    {"treatment_date__lt": "2027-03-16"},
    {"stage": "recently_diagnosed"},
    {"series__stage": "recently_diagnosed"},
])
def test_field_lookups_outside_the_declared_filters_are_refused(client, carer, world, params):
    response = client.get(SUBSCRIBERS, params)
    assert response.status_code == 400
    body = response.content.decode()
    assert "does not offer filtering" in body or "cannot be filtered" in body
    assert EMAIL not in body and "Ottoline" not in body  # nothing shown, nothing echoed
    assert not AuditEntry.objects.exists()  # nothing was shown, so nobody was looked at


def test_treatment_date_bisection_finds_nothing(client, carer, world):
    """The attack: halve the treatment_date range until one person is left. Every step is refused."""
    low, high = date(2026, 1, 1), date(2028, 1, 1)
    while (high - low).days > 1:
        middle = low + (high - low) / 2
        response = client.get(SUBSCRIBERS, {"q": EMAIL, "treatment_date__gte": middle.isoformat()})
        assert response.status_code == 400
        low = middle  # whatever the attacker guesses, the page never says
    assert not AuditEntry.objects.exists()


def test_declared_filters_search_ordering_and_pages_are_audited_per_person_shown(client, carer, world):
    person = world["subscriber"]
    assert client.get(SUBSCRIBERS).status_code == 200  # the plain first page: not a lookup
    assert not AuditEntry.objects.exists()

    assert client.get(SUBSCRIBERS, {"q": "private.person"}).status_code == 200
    assert list(AuditEntry.objects.values_list("subscriber_id", "detail")) == [(person.pk, "subscriber search")]

    def entries_of(params):  # the entries one page writes (the trail is append-only)
        before = AuditEntry.objects.count()
        assert client.get(SUBSCRIBERS, params).status_code == 200
        return AuditEntry.objects.order_by("pk")[before:]

    shown = {person.pk, *(o.pk for o in world["others"])}
    written = entries_of({"status__exact": "active", "language__exact": "en"})
    assert {e.subscriber_id for e in written} == shown and {e.detail for e in written} == {"subscriber list filter"}
    written = entries_of({"o": "2"})  # ordered by address: paging would find anyone
    assert {e.subscriber_id for e in written} == shown
    assert {e.detail for e in written} == {"subscriber list ordering or page"}
    assert all(entry.user == carer and entry.action == "view" for entry in AuditEntry.objects.all())


def test_suppression_search_is_audited_and_field_lookups_refused(client, carer, world):
    person = world["subscriber"]
    mine = Suppression.objects.create(email=EMAIL.upper(), reason="complaint")
    erased = Suppression.objects.create(email="gone@example.com", reason="erased")
    assert client.get(SUPPRESSIONS).status_code == 200
    assert not AuditEntry.objects.exists()

    for params in ({"email": "gone@example.com"}, {"email__startswith": "gone"}, {"reason": "erased"}, {"id": str(erased.pk)}):
        response = client.get(SUPPRESSIONS, params)
        assert response.status_code == 400, params
        assert "gone@example.com" not in response.content.decode()
    assert not AuditEntry.objects.exists()

    assert client.get(SUPPRESSIONS, {"q": "gone@"}).status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.suppression_id, entry.subscriber_id, entry.detail, entry.user) == (erased.pk, None, "suppression search", carer)

    client.get(SUPPRESSIONS, {"q": "private.person"})  # an address a subscriber holds: their id too
    entry = AuditEntry.objects.get(suppression_id=mine.pk)
    assert entry.subscriber_id == person.pk

    client.get(reverse("admin:nurture_suppression_change", args=[erased.pk]))
    assert AuditEntry.objects.filter(suppression_id=erased.pk, detail="suppression page").count() == 1
    for entry in AuditEntry.objects.all():
        assert "@" not in entry.detail


def test_the_delivery_list_refuses_lookups_on_the_subscriber(client, carer, world):
    for params in ({"subscriber__first_name": "Ottoline"}, {"subscriber__treatment_date__gte": "2027-01-01"},
                   {"sent_at__year": "99999999999999999999"}, {"status": "sent"}):
        response = client.get(DELIVERIES, params)
        assert response.status_code == 400, params
    assert not AuditEntry.objects.exists()
    assert client.get(DELIVERIES, {"subscriber": str(world["subscriber"].pk)}).status_code == 200


NINES = "9" * 40


@pytest.mark.parametrize("url_name, field", [
    ("admin:nurture_providerevent_changelist", "timestamp"),
    ("admin:nurture_auditentry_changelist", "at"),
])
@pytest.mark.parametrize("params", [
    {"__year": NINES},
    {"__year": "9" * 5000},  # past Python's int-from-text limit
    {"__year": "9999"},  # "the next year" would be 10000
    {"__year": "9999", "__month": "12"},
    {"__year": "9999", "__month": "12", "__day": "31"},
    {"__year": "0"},
    {"__year": "2026", "__month": "13"},
    {"__year": "2026", "__month": "2", "__day": "30"},
    {"__year": "-1"},
    {"__year": "x"},
])
def test_date_hierarchy_values_out_of_range_are_a_400_never_a_500(client, world, url_name, field, params):
    user = staff_user("everyone", SUBSCRIBER_CARE, AUDITORS)
    verified_login(client, user)
    ProviderEvent.objects.create(provider="test", event_id="e1", event_type="bounced", timestamp=timezone.now(),
                                 delivery=world["delivery"], matched=True)
    response = client.get(reverse(url_name), {f"{field}{key}": value for key, value in params.items()})
    assert response.status_code == 400, (params, response.status_code)
    assert "year from 1 to 9998" in response.content.decode()


@pytest.mark.parametrize("url_name, field", [
    ("admin:nurture_providerevent_changelist", "timestamp"),
    ("admin:nurture_auditentry_changelist", "at"),
])
def test_date_hierarchy_in_range_still_filters(client, world, url_name, field):
    user = staff_user("everyone", SUBSCRIBER_CARE, AUDITORS)
    verified_login(client, user)
    this_year = timezone.now().year
    assert client.get(reverse(url_name), {f"{field}__year": str(this_year)}).status_code == 200
    assert client.get(reverse(url_name), {f"{field}__year": "9998", f"{field}__month": "12"}).status_code == 200
    assert client.get(reverse(url_name), {f"{field}__gte": "2026-01-01"}).status_code == 400  # not a declared filter


def test_audit_csv_export_refuses_overflowing_dates(client, world):
    user = staff_user("auditor", AUDITORS)
    verified_login(client, user)
    response = client.get(reverse("admin:nurture_auditentry_export"), {"at__year": NINES})
    assert response.status_code == 400


def _date_fields(model) -> list[str]:
    from django.db import models as m

    return [f.name for f in model._meta.get_fields() if isinstance(f, (m.DateField, m.DateTimeField))]


@pytest.mark.parametrize("suffix, value", [
    ("__year", NINES), ("__year", "9999"), ("__month", "99999999999999999999"), ("__gte", "99999-01-01"),
    ("__lt", "9999-12-31 23:59:59.999999+14:00"), ("", "0000-00-00"), ("__date", "9999-12-31"),
    ("__range", "0001-01-01,9999-12-31"), ("__year__gt", NINES), ("__iso_year", NINES),
])
def test_no_admin_list_has_a_date_filter_that_500s(admin_client, world, suffix, value):
    """Every registered admin list, every date field it has, with values that overflow: never a 500."""
    from django.contrib import admin as django_admin

    for model, model_admin in django_admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for name in _date_fields(model):
            response = admin_client.get(url, {f"{name}{suffix}": value})
            assert response.status_code in (200, 302, 400, 403), (url, name, suffix, response.status_code)


def test_auditors_find_the_looks_at_one_suppression_row(client, world):
    erased = Suppression.objects.create(email="gone@example.com", reason="erased")
    carer_user = staff_user("carer", SUBSCRIBER_CARE)
    verified_login(client, carer_user)
    client.get(SUPPRESSIONS, {"q": "gone@"})
    client.get(SUBSCRIBERS, {"q": "private.person"})
    client.logout()
    verified_login(client, staff_user("auditor", AUDITORS))
    url = reverse("admin:nurture_auditentry_changelist")
    page = client.get(url, {"suppression_id": str(erased.pk)})
    assert page.status_code == 200
    assert [(e.suppression_id, e.username) for e in page.context["cl"].result_list] == [(erased.pk, "carer")]
    assert 'name="suppression_id"' in page.content.decode() and 'name="subscriber_id"' in page.content.decode()
    assert client.get(url, {"suppression_id": "x" * 30}).status_code == 200  # not digits: ignored
