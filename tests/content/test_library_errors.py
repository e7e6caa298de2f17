"""A bad file stops load_content with the file and line named, and nothing is imported."""
from __future__ import annotations

import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from content.models import Article, ArticleVersion
from nurture.models import Series, Step, StepArticle

pytestmark = pytest.mark.django_db


@pytest.fixture
def library_copy(tmp_path, library_dir):
    target = tmp_path / "library"
    shutil.copytree(library_dir, target)
    return target


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}: the test no longer matches the library"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def load(library: Path) -> str:
    out = StringIO()
    call_command("load_content", "--library-dir", str(library), stdout=out)
    return out.getvalue()


def nothing_in_db() -> bool:
    return not (Article.objects.exists() or ArticleVersion.objects.exists() or Series.objects.exists()
                or Step.objects.exists() or StepArticle.objects.exists())


def body_end_append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")


# Each case: (what it breaks, file, how, the line to expect (a needle found on it, or a number), message part)
CASES = [
    ("missing key", "en/welcome.md", lambda p: replace_in(p, 'source_section: "Seeking a Second Opinion"\n', ""), 2,
     "front-matter key 'source_section' is missing"),
    ("unknown key", "en/welcome.md", lambda p: replace_in(p, "title: Welcome", "author: someone\ntitle: Welcome"), "author:",
     "unknown front-matter key 'author'"),
    ("source section the guide does not have", "en/welcome.md",
     lambda p: replace_in(p, 'source_section: "Seeking a Second Opinion"', 'source_section: "Seeking a Second Opinion; Chapter 9"'),
     "source_section:", "names 'Chapter 9', which is not a section of the guide"),
    ("unknown stage", "en/time-to-decide.md", lambda p: replace_in(p, "stages: [recently_diagnosed", "stages: [newly_found"), "stages:",
     "unknown stage 'newly_found'"),
    ("unknown status", "es/welcome.md", lambda p: replace_in(p, "status: published", "status: live"), "status:",
     "unknown status 'live'"),
    ("impossible date", "en/drug-history.md", lambda p: replace_in(p, "last_reviewed: 2026-12-07", "last_reviewed: 2026-13-40"),
     "last_reviewed:", "is not a valid date"),
    ("date in words", "en/drug-history.md", lambda p: replace_in(p, "last_reviewed: 2026-12-07", "last_reviewed: last week"),
     "last_reviewed:", "is not a valid date"),
    ("slug not the file name", "en/drug-history.md", lambda p: replace_in(p, "slug: drug-history", "slug: drugs"), "slug:",
     "must match the file name"),
    ("link to a missing article", "en/drug-history.md",
     lambda p: replace_in(p, "(article:getting-your-records)", "(article:getting-your-recrds)"), "article:getting-your-recrds",
     "no article 'getting-your-recrds' in 'en'"),
    ("link to an article the reader's series never sends", "en/drug-history.md",
     lambda p: replace_in(p, "(article:getting-your-records)", "(article:time-to-decide)"), "article:time-to-decide",
     "link to article:time-to-decide, which the in_treatment series (en) never sends"),
    ("raw HTML", "en/welcome.md", lambda p: body_end_append(p, 'Look: <img src="https://t.example/p.gif" onerror="x()">'),
     "<img", "raw HTML is not allowed"),
    ("h1 in the body", "es/welcome.md", lambda p: body_end_append(p, "# Un título"), "# Un título", "top-level heading"),
    ("setext h1 in the body", "en/welcome.md", lambda p: body_end_append(p, "A title\n======="), "=======", "top-level heading"),
    ("image", "en/welcome.md", lambda p: body_end_append(p, "![pixel](https://t.example/p.gif)"), "![pixel]", "images are not allowed"),
    ("javascript link", "en/welcome.md", lambda p: body_end_append(p, "[click](javascript:alert(1))"), "[click]",
     "only http(s)://, mailto: and article: links"),
    ("indented code block", "en/welcome.md", lambda p: body_end_append(p, "    indented by mistake"), "    indented by mistake", "renders to <code>, <pre>"),
    ("unclosed front matter", "en/welcome.md", lambda p: replace_in(p, "last_reviewed: 2026-12-07\n---\n", "last_reviewed: 2026-12-07\n"), 1,
     "never closed"),
    ("front matter not YAML", "en/welcome.md", lambda p: replace_in(p, "title: Welcome to your guide", 'title: "Welcome to'), None,
     "YAML does not parse"),
    ("series names an unknown article", "es/_series.yaml", lambda p: replace_in(p, "[keeping-your-records]", "[keeping-records]"),
     "[keeping-records]", "unknown article 'keeping-records' in 'es'"),
    ("series with an unknown stage", "en/_series.yaml", lambda p: replace_in(p, "in_remission:", "cured:"), "cured:",
     "unknown stage 'cured'"),
    ("series file not YAML", "en/_series.yaml", lambda p: replace_in(p, "      subject: \"Finding another doctor\"", "      subject: \"Finding another doctor"),
     None, "YAML does not parse"),
    ("a rule in the body", "es/welcome.md", lambda p: body_end_append(p, "Fin.\n\n* * *\n\nMás."), "* * *", "renders to <hr>"),
    ("series step delayed beyond a year", "en/_series.yaml", lambda p: replace_in(p, "delay_days: 7", "delay_days: 99999999999"),
     "delay_days: 99999999999", "delay_days must be a whole number of days from 0 to 365"),
    ("key given twice", "en/welcome.md", lambda p: replace_in(p, "last_reviewed: 2026-12-07", "last_reviewed: 2026-12-07\nstatus: draft"), "status: draft",
     "'status' is given twice"),
    ("series step with a negative delay", "en/_series.yaml", lambda p: replace_in(p, "delay_days: 4", "delay_days: -4"), "delay_days: -4",
     "delay_days must be a whole number"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_named_with_its_line_and_nothing_is_imported(library_copy, case):
    _, relative, mutate, expected_line, message = case
    path = library_copy / relative
    mutate(path)
    if isinstance(expected_line, str):
        expected_line = line_of(path, expected_line)
    with pytest.raises(CommandError) as raised:
        load(library_copy)
    text = str(raised.value)
    assert "Nothing imported" in text
    if expected_line is None:  # YAML parse errors: the parser's line, which must be inside the file
        match = re.search(rf"{re.escape(str(path))}:(\d+): ([^\n]*)", text)
        assert match and message in match.group(2), text
        assert 1 <= int(match.group(1)) <= len(path.read_text(encoding="utf-8").split("\n"))
    else:
        assert f"{path}:{expected_line}: " in text, text
        line_text = next(line for line in text.splitlines() if line.startswith(f"{path}:{expected_line}: "))
        assert message in line_text, text
    assert nothing_in_db()


def test_empty_body_line_is_the_first_body_line(library_copy):
    path = library_copy / "en" / "welcome.md"
    front = path.read_text(encoding="utf-8").split("\n---\n", 1)[0]
    path.write_text(front + "\n---\n\n\n", encoding="utf-8")
    closing = front.count("\n") + 2  # line of the closing ---
    with pytest.raises(CommandError, match=rf"welcome\.md:{closing + 1}: the article body is empty"):
        load(library_copy)


def test_link_must_exist_in_the_same_language(library_copy):
    """An article only in English cannot be linked from a Spanish one."""
    english_only = library_copy / "en" / "only-in-english.md"
    shutil.copy(library_copy / "en" / "welcome.md", english_only)
    replace_in(english_only, "slug: welcome", "slug: only-in-english")
    load(library_copy)  # fine so far: the English article exists
    spanish = library_copy / "es" / "welcome.md"
    body_end_append(spanish, "Vea [otra nota](article:only-in-english).")
    before = Article.objects.count()
    with pytest.raises(CommandError) as raised:
        load(library_copy)
    assert f"{spanish}:{line_of(spanish, 'article:only-in-english')}: " in str(raised.value)
    assert "no article 'only-in-english' in 'es'" in str(raised.value)
    assert Article.objects.count() == before


def test_every_problem_is_listed_and_an_earlier_import_is_untouched(library_copy):
    load(library_copy)
    state = list(Article.objects.order_by("pk").values()), list(Step.objects.order_by("pk").values())
    replace_in(library_copy / "en" / "welcome.md", "status: published", "status: live")
    replace_in(library_copy / "es" / "drug-history.md", "slug: drug-history", "slug: drugs")
    replace_in(library_copy / "en" / "why-second-opinion.md", "Lots of people get a second opinion.", "Lots of people get a second opinion. Changed.")
    with pytest.raises(CommandError) as raised:
        load(library_copy)
    assert "2 problems" in str(raised.value)
    assert "welcome.md" in str(raised.value) and "drug-history.md" in str(raised.value)
    # The valid change to why-second-opinion was not written either: all or nothing.
    assert (list(Article.objects.order_by("pk").values()), list(Step.objects.order_by("pk").values())) == state


def test_file_name_that_is_not_a_slug_is_refused(library_copy):
    bad = library_copy / "en" / "Drug_History.md"
    (library_copy / "en" / "drug-history.md").rename(bad)
    replace_in(bad, "slug: drug-history", "slug: Drug_History")
    with pytest.raises(CommandError) as raised:
        load(library_copy)
    assert f"{bad}:{line_of(bad, 'slug:')}: slug 'Drug_History' must be lower-case letters" in str(raised.value)
    assert nothing_in_db()


def test_unknown_language_directory_is_refused(library_copy):
    shutil.copytree(library_copy / "es", library_copy / "fr")
    with pytest.raises(CommandError, match="unknown language directory"):
        load(library_copy)
    assert nothing_in_db()


def test_missing_library_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such library directory"):
        load(tmp_path / "nowhere")
