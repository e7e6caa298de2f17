"""Staff pages that explain themselves: steps counted from 1 wherever they show (and typed from 1),
articles named by title, the journey's star said in words, a consent record named by what it records."""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from content.services import articles_approve
from nurture.models import ConsentRecord, Series, StepArticle
from nurture.services.library import library_import
from support.library import sample_reviewer
from tests.helpers.scheduler import active_subscriber
from tests.nurture.admin.test_content import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def remission(library_dir) -> Series:
    library_import(library_dir=library_dir)
    articles_approve(user=sample_reviewer())  # approved: nothing held back, and the journey plans every step
    return Series.objects.get(stage="in_remission", language="en")


def test_the_series_form_counts_steps_from_1_and_names_articles_by_title(admin_client, remission):
    url = reverse("admin:nurture_series_change", args=[remission.pk])
    html = admin_client.get(url).content.decode()
    data = form_data(html)
    assert data["steps-0-position"] == ["1"] and data["steps-1-position"] == ["2"]
    assert "Its place in the series: 1 is the first email." in html
    assert "When two doctors see it differently; " in html and "when-opinions-differ" not in html
    # Saved unchanged: every step keeps its place.
    before = list(remission.steps.order_by("pk").values_list("pk", "position"))
    assert admin_client.post(url, data).status_code == 302
    assert list(remission.steps.order_by("pk").values_list("pk", "position")) == before
    # Typed from 1: the last step moved to number 12 is stored at position 11.
    last = remission.steps.count() - 1
    data[f"steps-{last}-position"] = ["12"]
    assert admin_client.post(url, data).status_code == 302
    assert remission.steps.get(pk=before[last][0]).position == 11


def test_step_number_0_is_refused_in_words(admin_client, remission):
    url = reverse("admin:nurture_series_change", args=[remission.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["steps-1-position"] = ["0"]
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "Step numbers start at 1." in response.content.decode()
    assert sorted(remission.steps.values_list("position", flat=True)) == list(range(remission.steps.count()))


def test_the_step_list_and_page_name_steps_from_1_and_articles_by_title(admin_client, remission):
    listing = admin_client.get(reverse("admin:nurture_step_changelist"), {"series__id__exact": remission.pk}).content.decode()
    assert "#1: Welcome to your guide" in listing and "#0:" not in listing
    assert "When two doctors see it differently; " in listing and "when-opinions-differ" not in listing
    step = remission.steps.get(position=5)
    page = admin_client.get(reverse("admin:nurture_step_change", args=[step.pk])).content.decode()
    assert form_data(page)["position"] == ["6"]
    assert "StepArticle object" not in page
    for link in StepArticle.objects.filter(step=step):
        assert str(link) == link.article.title and link.article.title in page


def test_a_consent_record_is_named_by_what_it_records(admin_client, remission):
    reader = active_subscriber("reader@example.org", remission)
    record = ConsentRecord.objects.create(subscriber=reader, kind=ConsentRecord.Kind.PAUSE, source="pause_link",
                                          consent_text="Pause for 4 weeks", language="en")
    record.refresh_from_db()
    assert str(record) == f"Paused, {record.given_at:%Y-%m-%d %H:%M} UTC"
    page = admin_client.get(reverse("admin:nurture_subscriber_change", args=[reader.pk])).content.decode()
    assert "ConsentRecord object" not in page and "Paused," in page
    assert "#1: Welcome to your guide" in page and "(position" not in page  # the next step, from 1


def test_the_journey_explains_its_star(admin_client, remission):
    url = reverse("email_preview:journey")
    plain = admin_client.get(url, {"stage": "recently_diagnosed", "language": "en"}).content.decode()
    assert "★" in plain and 'id="journey-star"' in plain and "Before treatment</strong>: this step matters" in plain
    when = (timezone.localdate() + dt.timedelta(days=20)).isoformat()
    dated = admin_client.get(url, {"stage": "recently_diagnosed", "language": "en", "treatment_date": when}).content.decode()
    assert 'id="journey-star"' in dated and "give a sample treatment date" not in dated
    # A series with no "before treatment" step has no star and no note.
    remission_page = admin_client.get(url, {"stage": "in_remission", "language": "en"}).content.decode()
    assert "★" not in remission_page and 'id="journey-star"' not in remission_page


def test_the_stage_change_page_names_each_person_s_next_step_from_1(admin_client, remission):
    reader = active_subscriber("reader@example.org", remission)
    reader.next_step_position = 2
    reader.save(update_fields=["next_step_position"])
    page = admin_client.post(reverse("admin:nurture_subscriber_changelist"),
                             {"action": "change_stage", "_selected_action": [reader.pk]}).content.decode()
    assert "Series, next step" in page and f"{remission}, #3</td>" in page
