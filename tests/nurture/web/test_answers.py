"""The public pages' shared parts: one module of answers (bad link, 429, CSRF failure, the friendly
500), the token decorator every link page goes through, and the preference page's action table.
The web modules import each other in one direction only, and no private name crosses a module."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import get_resolver

from nurture import tokens
from nurture.web import answers
from nurture.web.preferences import PREFERENCE_ACTIONS
from nurture.web.token_limit import STOP_ACTIONS
from tests.helpers.scheduler import active_subscriber, series

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "nurture" / "web"


def _web_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(web module imported, names taken from it) for each `from nurture.web[.x] import ...` in path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nurture.web"):
            if node.module == "nurture.web":
                found += [(alias.name, []) for alias in node.names]
            else:
                found.append((node.module.split(".")[2], [alias.name for alias in node.names]))
    return found


def test_the_web_modules_import_in_one_direction_and_take_no_private_names():
    graph = {path.stem: {module for module, _names in _web_imports(path)} for path in WEB.glob("*.py")}
    private = [
        f"{path.stem} takes {name} from {module}"
        for path in WEB.glob("*.py") for module, names in _web_imports(path) for name in names if name.startswith("_")
    ]
    assert private == []
    assert graph["care"] and "answers" in graph["care"]  # the reader sees the imports

    def reaches(start: str, goal: str, seen=()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, (*seen, nxt))) for nxt in graph.get(start, ()))

    assert [module for module in graph if reaches(module, module)] == []
    assert graph["answers"] == set()  # the shared answers import no view module


def test_every_button_of_the_preference_page_is_in_the_action_table():
    page = (ROOT / "templates" / "nurture" / "preferences.html").read_text(encoding="utf-8")
    buttons = set(re.findall(r'name="action" value="(\w+)"', page))
    assert {"save", "resume", "pause", "carer", "carer_stop", "unsubscribe", "erase"} <= buttons
    assert buttons <= set(PREFERENCE_ACTIONS)
    assert STOP_ACTIONS <= set(PREFERENCE_ACTIONS)  # the buttons never rate limited are the table's


def test_the_site_answers_a_server_error_with_the_plain_page():
    handler = get_resolver().resolve_error_handler(500)
    assert handler is answers.server_error
    response = handler(RequestFactory().get("/"))
    assert response.status_code == 500 and "Sorry, something went wrong on our side" in response.content.decode()
    assert settings.CSRF_FAILURE_VIEW == "nurture.web.answers.csrf_failure"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["preferences", "preferences_export", "pause", "bereavement"])
def test_a_subscriber_link_for_another_purpose_gets_the_plain_bad_link_page(client, page):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    wrong = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    path = {"preferences": "/preferences/{}/", "preferences_export": "/preferences/{}/export/", "pause": "/pause/{}/",
            "bereavement": "/preferences/{}/bereavement/"}[page].format(wrong)
    response = client.get(path)
    assert response.status_code == 400 and response["Cache-Control"] == "private, no-store"
    assert "ana@example.org" not in response.content.decode()
    assert [t.name for t in response.templates][0] == "nurture/bad_link.html"
