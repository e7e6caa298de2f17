"""Who can see what in the admin (docs/admin.md, "Who can see what"): each role walks every admin
URL, model pages and custom staff views, with and without ?subscriber=, and sees only what it may.

A content editor never meets a subscriber's address or name (and never a page about one person);
a staff user with no permission gets 403 naming the permission everywhere; bad query input is a
400 or a plain "not found", never a 500 (the test client re-raises any server error)."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, reverse

from content.models import Article
from content.services import article_save
from nurture.models import AuditEntry, ConsentRecord, Delivery, ProviderEvent, Suppression
from tests.helpers.scheduler import active_subscriber, series
from tests.helpers.staff import AUDITORS, CONTENT_EDITORS, SUBSCRIBER_CARE, staff_user, totp_device, verified_login

pytestmark = pytest.mark.django_db

SEEDED_EMAIL = "zebulon.quartermaine@example.net"
SEEDED_NAME = "Zebulon"

EDITOR_MODELS = {"content.article", "nurture.series", "nurture.step"}
CARE_MODELS = {
    "nurture.subscriber", "nurture.delivery", "nurture.suppression", "nurture.providerevent",
    "nurture.series", "nurture.step",
}
AUDITOR_MODELS = {"nurture.auditentry", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded():
    """One of each: an article, a series with a step, a subscriber with a name, a delivery, a consent
    record, a suppression, a provider event, and a superuser's TOTP device."""
    article_save(article=Article(
        slug="welcome", language="en", title="Welcome", stages=["in_treatment"], source_section="test",
        body_markdown="Body of welcome.", status=Article.Status.PUBLISHED,
    ))
    treatment = series("in_treatment", [(0, ["welcome"])])
    person = active_subscriber(SEEDED_EMAIL, treatment, first_name=SEEDED_NAME)
    ConsentRecord.objects.create(subscriber=person, consent_text="I agree", language="en")
    delivery = Delivery.objects.create(subscriber=person, step=treatment.steps.get(), status="failed",
                                       failure_reason="HTTP 422: inactive recipient")
    Suppression.objects.create(email="bounced.person@example.net", reason="bounce")
    ProviderEvent.objects.create(provider="postmark", event_id="ev-1", event_type="bounced", delivery=delivery,
                                 timestamp=delivery.queued_at)
    lead = staff_user("lead", superuser=True)
    return {"series": treatment, "step": treatment.steps.get(), "subscriber": person, "delivery": delivery,
            "article": Article.objects.get(slug="welcome"), "device": totp_device(lead)}


def _model_urls(seeded) -> list[tuple[str, str]]:
    """(model label, url) for every registered model admin: list, add, and for one object its change,
    history and delete pages."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        info = (model._meta.app_label, model._meta.model_name)
        urls.append((label, reverse("admin:%s_%s_changelist" % info)))
        try:
            urls.append((label, reverse("admin:%s_%s_add" % info)))
        except NoReverseMatch:
            pass
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            for view in ("change", "history", "delete"):
                urls.append((label, reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk])))
    return urls


def _custom_urls(seeded) -> dict[str, str]:
    step, delivery, person = seeded["step"], seeded["delivery"], seeded["subscriber"]
    return {
        "previews": reverse("email_preview:index"),
        "step": reverse("email_preview:step", args=[step.pk]),
        "step_html": reverse("email_preview:step_html", args=[step.pk]),
        "journey": reverse("email_preview:journey"),
        "delivery": reverse("email_preview:delivery", args=[delivery.pk]),
        "delivery_html": reverse("email_preview:delivery_html", args=[delivery.pk]),
        "overview": reverse("nurture_overview"),
        "manage": reverse("admin:nurture_subscriber_manage", args=[person.pk]),
        "article_preview": reverse("admin:content_article_preview", args=[seeded["article"].pk]),
        "audit_export": reverse("admin:nurture_auditentry_export"),
        "totp_config": reverse("admin:otp_totp_totpdevice_config", args=[seeded["device"].pk]),
        "totp_qrcode": reverse("admin:otp_totp_totpdevice_qrcode", args=[seeded["device"].pk]),
    }


def _with_subscriber(url: str, person) -> list[str]:
    return [url, f"{url}?subscriber={person.pk}", f"{url}?subscriber={SEEDED_EMAIL}"]


def _walk(client, seeded):
    """Every admin URL, with and without ?subscriber=: {url: response}."""
    person = seeded["subscriber"]
    pages = {}
    for label, url in _model_urls(seeded):
        for variant in _with_subscriber(url, person):
            pages[variant] = (label, client.get(variant))
    for name, url in _custom_urls(seeded).items():
        for variant in _with_subscriber(url, person):
            pages[variant] = (name, client.get(variant))
    return pages


def _text(response) -> str:
    return response.content.decode(errors="replace") if not getattr(response, "streaming", False) else ""


def test_the_roles_hold_exactly_their_permissions():
    def perms(name):
        return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=name).permissions.select_related("content_type")}

    editors, care, auditors = perms(CONTENT_EDITORS), perms(SUBSCRIBER_CARE), perms(AUDITORS)
    # Content editors: nothing about subscribers, deliveries, suppressions, events or the trail.
    assert not {p for p in editors if p.split(".")[1].split("_", 1)[1] in
                {"subscriber", "delivery", "suppression", "providerevent", "consentrecord", "auditentry"}}
    assert "nurture.preview_emails" in editors and "nurture.preview_as_subscriber" not in editors
    assert "nurture.view_overview" not in editors  # its counts are per stage
    assert {"nurture.change_subscriber", "nurture.change_delivery", "nurture.preview_as_subscriber"} <= care
    assert not {p for p in care if "auditentry" in p or p.startswith("content.")}
    # Auditors only read.
    assert auditors and all(p.split(".")[1].startswith(("view_", "export_")) for p in auditors)
    assert "nurture.view_subscriber" not in auditors and "nurture.view_delivery" not in auditors


def test_no_permission_staff_get_403_naming_the_permission_everywhere(client, seeded):
    verified_login(client, staff_user("nobody"))
    pages = _walk(client, seeded)
    assert len(pages) > 60
    for url, (label, response) in pages.items():
        assert response.status_code == 403, (url, response.status_code)
        if label in _custom_urls(seeded) or label.startswith("nurture."):
            assert "needs the permission" in _text(response), url
        assert SEEDED_EMAIL not in _text(response) and SEEDED_NAME not in _text(response)
    # The index says there is nothing to see, and links to no staff tool.
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("nurture_overview") not in index and reverse("email_preview:index") not in index
    assert not AuditEntry.objects.exists()


def test_content_editors_never_see_a_subscriber(client, seeded):
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    pages = _walk(client, seeded)
    custom = _custom_urls(seeded)
    person = seeded["subscriber"]
    for url, (label, response) in pages.items():
        text = _text(response)
        assert SEEDED_EMAIL not in text and SEEDED_NAME not in text, url
        if label in EDITOR_MODELS and "/add/" not in url and "/delete/" not in url and "subscriber=" not in url:
            assert response.status_code == 200, (url, response.status_code)
        elif label.startswith(("nurture.", "axes.", "auth.", "otp_totp.", "django_celery_beat.")) and label not in EDITOR_MODELS:
            assert response.status_code == 403, (url, response.status_code)
    for name in ("previews", "step", "step_html", "journey"):
        assert pages[custom[name]][1].status_code == 200, name
    for name in ("step", "step_html"):
        for variant in _with_subscriber(custom[name], person)[1:]:
            response = pages[variant][1]
            assert response.status_code == 403 and "nurture.preview_as_subscriber" in _text(response), variant
    for name in ("delivery", "delivery_html", "overview", "manage", "audit_export", "totp_config", "totp_qrcode"):
        assert pages[custom[name]][1].status_code == 403, name
    # A test send to themselves works with the sample reader; with a real subscriber it is refused.
    sent = client.post(reverse("email_preview:step_test_send", args=[seeded["step"].pk]))
    assert sent.status_code == 302
    refused = client.post(reverse("email_preview:step_test_send", args=[seeded["step"].pk]) + f"?subscriber={SEEDED_EMAIL}")
    assert refused.status_code == 403
    # Whether an address is subscribed is not revealed: known and unknown addresses answer alike.
    unknown = client.get(reverse("email_preview:step", args=[seeded["step"].pk]) + "?subscriber=nobody@example.net")
    known = client.get(reverse("email_preview:step", args=[seeded["step"].pk]) + f"?subscriber={SEEDED_EMAIL}")
    assert unknown.status_code == known.status_code == 403
    assert unknown.context["message"] == known.context["message"]  # the same page (but its CSRF token)
    assert not AuditEntry.objects.exists()


def test_subscriber_care_see_people_and_not_the_audit_trail(client, seeded):
    verified_login(client, staff_user("carer", SUBSCRIBER_CARE))
    person, custom = seeded["subscriber"], _custom_urls(seeded)
    page = client.get(reverse("admin:nurture_subscriber_change", args=[person.pk]))
    assert page.status_code == 200 and SEEDED_EMAIL in page.content.decode()
    as_person = client.get(custom["step"] + f"?subscriber={person.pk}")
    assert as_person.status_code == 200 and SEEDED_NAME in as_person.content.decode()
    for name in ("delivery", "delivery_html", "overview", "manage", "previews", "journey"):
        assert client.get(custom[name]).status_code == 200, name
    for name in ("audit_export",):
        assert client.get(custom[name]).status_code == 403
    assert client.get(reverse("admin:nurture_auditentry_changelist")).status_code == 403
    assert client.get(reverse("admin:content_article_changelist")).status_code == 403


def test_auditors_see_the_trail_and_the_overview_counts_only(client, seeded):
    verified_login(client, staff_user("auditor", AUDITORS))
    pages = _walk(client, seeded)
    custom = _custom_urls(seeded)
    for url, (label, response) in pages.items():
        text = _text(response)
        assert SEEDED_EMAIL not in text and SEEDED_NAME not in text, url
        if label in AUDITOR_MODELS and "/add/" not in url and "/delete/" not in url:
            # A list refuses a query string that is not one of its filters: a 400, not a 500.
            assert response.status_code in ((200, 302, 400) if "?" in url else (200, 302)), (url, response.status_code)
        elif label in CARE_MODELS | EDITOR_MODELS:
            assert response.status_code == 403, url
    overview = pages[custom["overview"]][1]
    assert overview.status_code == 200
    assert "inactive recipient" not in overview.content.decode()  # per-delivery lists need nurture.view_delivery
    assert pages[custom["audit_export"]][1].status_code == 200
    for name in ("delivery", "delivery_html", "manage", "step", "previews"):
        assert pages[custom[name]][1].status_code == 403, name


@pytest.mark.parametrize("query", [
    "subscriber=%00", "subscriber=abc%00def", "subscriber=not-an-email@", "subscriber=" + "9" * 40, "subscriber=-1",
    "subscriber=%C0%AF", "subscriber=a@b@c", "first_name=%00",
])
def test_bad_subscriber_input_is_a_400_or_not_found_never_a_500(client, seeded, query):
    verified_login(client, staff_user("carer", SUBSCRIBER_CARE))
    step = seeded["step"]
    for name in ("email_preview:step", "email_preview:step_html"):
        response = client.get(reverse(name, args=[step.pk]) + "?" + query)
        assert response.status_code in (400, 404), (name, query, response.status_code)
    response = client.post(reverse("email_preview:step_test_send", args=[step.pk]) + "?" + query)
    assert response.status_code in (400, 404)


@pytest.mark.parametrize("query", ["q=%00", "q=x%00y", "status__exact=%00", "o=%00", "p=%00", "subscriber=%00", "id__exact=99999999999999999999999"])
def test_bad_list_input_never_500(client, seeded, query):
    verified_login(client, staff_user("lead2", superuser=True))
    for label, url in _model_urls(seeded):
        if url.endswith("/"):
            response = client.get(f"{url}?{query}")
            # 403: a page even a superuser may not use (e.g. adding an access attempt by hand)
            assert response.status_code in (200, 302, 400, 403, 404), (url, query, response.status_code)


def test_unknown_ids_are_not_found_not_errors(client, seeded):
    verified_login(client, staff_user("lead2", superuser=True))
    for url in (
        reverse("email_preview:step", args=[999999]), reverse("email_preview:step_html", args=[999999]),
        reverse("email_preview:delivery_html", args=[999999]),
        reverse("admin:otp_totp_totpdevice_config", args=[999999]), reverse("admin:otp_totp_totpdevice_qrcode", args=[999999]),
        reverse("admin:content_article_preview", args=[999999]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (reverse("email_preview:delivery", args=[999999]), reverse("admin:nurture_subscriber_manage", args=["abc"])):
        assert client.get(url, follow=True).status_code == 200, url


def test_custom_views_ask_for_the_admin_login_first(client, seeded):
    for name, url in _custom_urls(seeded).items():
        response = client.get(url)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"], name
