"""The house rules of the layout that a reader cannot see from one file: reads never call up into
writes, services never import the task module, each rule has one home and its forms agree."""
from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from content.models import Article
from nurture import providers
from nurture.models import Delivery, StepArticle, Subscriber
from nurture.selectors.series import (
    is_sendable,
    series_overview,
    step_hold_reasons,
    step_is_held_back,
    step_published_articles,
    steps_sendable_article_ids,
)
from nurture.services import planning
from nurture.sending.ledger import deliveries_mark_sent
from tests.helpers.scheduler import active_subscriber, article, series

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{a.name}" for a in node.names}
    return modules


READS_AND_RULES = [
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "nurture" / "selectors").glob("*.py")),
    "nurture/rules.py", "nurture/providers.py", "nurture/small_cells.py",
]


@pytest.mark.parametrize("module", READS_AND_RULES)
def test_reads_and_rules_never_import_a_service(module):
    assert not {m for m in imported_modules(ROOT / module) if m.startswith("nurture.services")}


def test_services_never_import_the_task_module():
    for path in sorted((ROOT / "nurture" / "services").glob("*.py")):
        assert "nurture.tasks" not in imported_modules(path), path.name


@pytest.mark.django_db
def test_the_sendable_rule_reads_the_same_in_memory_and_in_sql():
    slugs = [f"a-{status.replace('_', '-')}" for status in Article.Status.values]
    for slug, status in zip(slugs, Article.Status.values):
        article(slug, status=status)
    step = series("in_treatment", [(0, slugs)]).steps.get()
    links = list(StepArticle.objects.filter(step=step).select_related("article"))
    in_memory = {link.article_id for link in links if is_sendable(link.article)}
    assert in_memory == {Article.objects.get(slug="a-published").pk}
    assert in_memory == set(steps_sendable_article_ids(step_ids=[step.pk])[step.pk])
    assert in_memory == {a.pk for a in step_published_articles(step_id=step.pk)}
    assert step_hold_reasons(step=step) == ["“A Draft” (en) is in draft", "“A In Review” (en) is in review"]
    assert not step_is_held_back(step=step)
    overview = {row.series.pk: row for row in series_overview(since=timezone.now()) if row.series}
    assert overview[step.series_id].held_back == []  # the overview's SQL form agrees: one article is sendable
    Article.objects.filter(slug="a-published").update(status=Article.Status.DRAFT)
    step = type(step).objects.prefetch_related("steparticle_set__article").get(pk=step.pk)
    assert step_is_held_back(step=step)
    overview = {row.series.pk: row for row in series_overview(since=timezone.now()) if row.series}
    assert overview[step.series_id].held_back == [(0, step.subject)]


@pytest.mark.django_db
def test_mark_sent_moves_last_sent_at_forward_never_back():
    subscriber = active_subscriber("forward@example.org", series("in_treatment", [(0, ["first-article"])]))
    planning.deliveries_plan_due()
    delivery_id = Delivery.objects.get(subscriber=subscriber).pk
    Delivery.objects.filter(pk=delivery_id).update(status="sending")  # handed over, awaiting its answer
    later, earlier = timezone.now(), timezone.now() - timedelta(days=3)
    Subscriber.objects.filter(pk=subscriber.pk).update(last_sent_at=later)
    assert deliveries_mark_sent(provider_message_ids={delivery_id: "pm-1"}, sent_at=earlier) == 1
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.provider_message_id, delivery.sent_at) == ("sent", "pm-1", earlier)
    assert Subscriber.objects.get(pk=subscriber.pk).last_sent_at == later  # not moved back
    stuck = Delivery.objects.filter(status="sending")
    assert deliveries_mark_sent(provider_message_ids={delivery_id: "pm-2"}, sent_at=later, among=stuck) == 0
    assert Delivery.objects.get(pk=delivery_id).provider_message_id == "pm-1"  # `among` kept it out


@pytest.mark.parametrize(("provider", "payload", "soft"), [
    ("postmark", {"Type": "SoftBounce"}, True),
    ("postmark", {"Type": "HardBounce"}, False),
    ("sendgrid", {"type": "blocked"}, True),
    ("mailgun", {"severity": "temporary"}, True),
    ("mailgun", {"severity": "permanent"}, False),
    ("mailgun", {"Type": "SoftBounce"}, False),  # another provider's marking means nothing here
    ("someesp", {"Type": "SoftBounce"}, True),  # an unknown provider: any known marking counts
    ("postmark", "not a dict", False),
])
def test_each_provider_reads_its_own_soft_bounce(provider, payload, soft):
    assert providers.is_soft_bounce(provider=provider, esp_event=payload) is soft


def test_a_deliverys_article_versions_are_read_in_one_place():
    # The stored JSON ({"<article id>": version}) is read by Delivery.read_article_versions only:
    # nowhere else turns its text keys into ids by hand.
    by_hand = re.compile(r"article_versions or \{\}|int\(k\) for k in \w*article_versions")
    readers = [
        str(path.relative_to(ROOT)) for path in (ROOT / "nurture").rglob("*.py")
        if "migrations" not in path.parts and path.name != "engine.py" and by_hand.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []
    stored = {"12": 3, "4": 0, "x": 1, "7": "2", 9: 5}
    assert Delivery.read_article_versions(stored) == {12: 3, 4: 0, 9: 5}  # text keys become ids; malformed left out
    assert Delivery.read_article_versions(None) == {}
    assert Delivery(article_versions={"5": 2}).recorded_article_versions() == {5: 2}
