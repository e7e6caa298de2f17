"""Reading the library on disk: content/library/<lang>/*.md articles and <lang>/_series.yaml.

Pure reading and checking, no database: `read_library` returns everything parsed, or raises LibraryError
listing every problem as "path:line: message", so the importer writes nothing from a library with a bad file.
"""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError

from content import readability, sources
from content.models import Article, Language, Stage
from content.rendering import article_link_slugs, markdown_problems, normalise_markdown

SERIES_FILE = "_series.yaml"
FRONT_MATTER_KEYS = ("slug", "title", "stages", "source_section", "status", "reviewer", "last_reviewed")
# Optional: a reviewer's reason to publish an article past the reading-level ceiling (content.readability).
OPTIONAL_FRONT_MATTER_KEYS = ("reading_level_override",)
SERIES_KEYS = ("name", "steps")
STEP_KEYS = ("delay_days", "subject", "articles")
# Optional per step: `before_treatment: true` marks what matters before treatment starts (for someone
# who gave a treatment date, it is sent early enough to arrive before it).
OPTIONAL_STEP_KEYS = ("before_treatment",)
# A series step's subject: the file check here and nurture.models.Step.subject share this length.
SUBJECT_MAX_LENGTH = 150
TITLE_MAX = Article._meta.get_field("title").max_length
MAX_DELAY_DAYS = 365
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{display_path(self.path)}:{self.line}" if self.line else display_path(self.path)
        return f"{where}: {self.message}"


class LibraryError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@contextmanager
def as_library_problem(path: Path):
    """A model check the file checks did not foresee still ends as a named file problem, and the
    transaction around the import rolls everything back."""
    try:
        yield
    except ValidationError as exc:
        raise LibraryError([Problem(path, 0, "; ".join(exc.messages))]) from exc


@dataclass
class ArticleFile:
    path: Path
    language: str
    slug: str
    title: str
    stages: list[str]
    source_section: str
    status: str
    reviewer: str
    last_reviewed: dt.date | None
    body_markdown: str
    reading_level_override: str = ""
    reading_level: "readability.Level | None" = None


@dataclass
class StepEntry:
    delay_days: int
    subject: str
    article_slugs: list[str]
    before_treatment: bool = False


@dataclass
class SeriesEntry:
    path: Path
    language: str
    stage: str
    name: str
    steps: list[StepEntry] = field(default_factory=list)


@dataclass
class Library:
    articles: list[ArticleFile]
    series: list[SeriesEntry]

    def reading_warnings(self) -> list[str]:
        """Articles past the warning level (past the ceiling they are problems, unless overridden)."""
        return [
            f"{display_path(a.path)}: reading level {a.reading_level.describe()}"
            + (f"; published with the override: {a.reading_level_override}"
               if a.reading_level.verdict == readability.BLOCK else "")
            for a in self.articles
            if a.reading_level is not None and a.reading_level.verdict != readability.OK
        ]


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same results, faster


class _StringDateLoader(_BaseLoader):
    """SafeLoader that leaves dates as text, so a bad date is our clear error, not a YAML crash."""


_StringDateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(text: str, path: Path, first_line: int, problems: list[Problem]):
    """(data, {key path: line}) or (None, {}) after recording the problem. first_line: file line of text's line 1."""
    loader = _StringDateLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = first_line + (mark.line if mark else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(path, line, f"YAML does not parse: {reason}"))
        return None, {}
    finally:
        loader.dispose()
    duplicates = _duplicate_keys(node)
    for key, line in duplicates:
        problems.append(Problem(path, first_line + line, f"'{key}' is given twice"))
    if duplicates:
        return None, {}
    return data, _node_lines(node, first_line)


def _duplicate_keys(node) -> list[tuple[str, int]]:
    """YAML quietly keeps the last of two equal keys; in a hand-edited file that is a mistake to report."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                found.append((key_node.value, key_node.start_mark.line))
            seen.add(key_node.value)
            found.extend(_duplicate_keys(value_node))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found.extend(_duplicate_keys(item))
    return found


def _node_lines(node, first_line: int, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path, e.g. ("in_treatment", "steps", 2, "articles"), to its line in the file."""
    lines: dict[tuple, int] = {}
    if node is None:
        return lines
    lines[prefix] = first_line + node.start_mark.line
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[prefix + (key,)] = first_line + key_node.start_mark.line
            for sub, line in _node_lines(value_node, first_line, prefix + (key,)).items():
                lines.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_node_lines(item, first_line, prefix + (index,)))
    return lines


def _split_front_matter(path: Path, text: str, problems: list[Problem]) -> tuple[str, int, str, int] | None:
    """(front matter text, its first line, body text, body's first line) or None after recording the problem."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        problems.append(Problem(path, 1, "the file must start with front matter: a line '---', the keys, then '---'"))
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[1:index]), 2, "\n".join(lines[index + 1:]), index + 2
    problems.append(Problem(path, 1, "front matter opened with '---' here is never closed by a second '---' line"))
    return None


def _text(value, key: str, *, allow_empty: bool = False, max_length: int | None = None) -> tuple[str | None,
                                                                                                 str | None]:
    if value is None and allow_empty:
        return "", None
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        return None, f"'{key}' must be {'text' if allow_empty else 'non-empty text'}"
    if max_length and len(value) > max_length:
        return None, f"'{key}' is longer than {max_length} characters"
    return value.strip(), None


def read_article(path: Path, language: str, problems: list[Problem]) -> ArticleFile | None:
    before = len(problems)
    try:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, 1, f"not UTF-8 text ({exc.reason})"))
        return None
    split = _split_front_matter(path, text, problems)
    if split is None:
        return None
    front_text, front_line, body, body_line = split
    data, lines = _load_yaml(front_text, path, front_line, problems)
    if len(problems) > before:
        return None
    if not isinstance(data, dict):
        problems.append(Problem(path, front_line,
            f"front matter must be 'key: value' lines with the keys {', '.join(FRONT_MATTER_KEYS)}"))
        return None

    def problem(key, message):
        problems.append(Problem(path, lines.get((key,), front_line), message))

    for key in data:
        if key not in FRONT_MATTER_KEYS + OPTIONAL_FRONT_MATTER_KEYS:
            problem(key,
                f"unknown front-matter key '{key}' (allowed: "
                f"{', '.join(FRONT_MATTER_KEYS + OPTIONAL_FRONT_MATTER_KEYS)})")
    for key in FRONT_MATTER_KEYS:
        if key not in data:
            problems.append(Problem(path, front_line, f"front-matter key '{key}' is missing"))
    if len(problems) > before:
        return None

    slug = data["slug"]
    if not isinstance(slug, str) or slug != path.stem:
        problem("slug", f"slug {slug!r} must match the file name ({path.stem!r})")
    elif not SLUG_RE.fullmatch(slug) or len(slug) > 80:
        problem("slug", f"slug {slug!r} must be lower-case letters, digits and hyphens (up to 80), e.g. drug-history")
    title, error = _text(data["title"], "title", max_length=TITLE_MAX)
    if error:
        problem("title", error)
    source_section, error = _text(data["source_section"], "source_section", max_length=300)
    if error:
        problem("source_section", error)
    elif unknown := sources.unknown_sections(source_section):
        problem("source_section",
                f"'source_section' names {', '.join(map(repr, unknown))}, which is not a section of the guide "
                f"(known: {'; '.join(sources.SECTIONS)}; separate several with '; ')")
    reviewer, error = _text(data["reviewer"], "reviewer", allow_empty=True, max_length=200)
    if error:
        problem("reviewer", error)

    stages = data["stages"]
    if not isinstance(stages, list) or not stages:
        problem("stages", f"'stages' must be a list such as [{', '.join(Stage.values)}]")
    else:
        for stage in stages:
            if stage not in Stage.values:
                problem("stages", f"unknown stage {stage!r} (known: {', '.join(Stage.values)})")
        if len(set(map(str, stages))) != len(stages):
            problem("stages", "a stage is listed twice")

    status = data["status"]
    if status not in Article.Status.values:
        problem("status", f"unknown status {status!r} (known: {', '.join(Article.Status.values)})")

    last_reviewed = None
    raw_date = data["last_reviewed"]
    if raw_date in (None, ""):
        if status == Article.Status.PUBLISHED:
            problem("last_reviewed", "a published article needs 'last_reviewed' (YYYY-MM-DD)")
    else:
        try:
            if not isinstance(raw_date, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_date):
                raise ValueError("not in the form YYYY-MM-DD")
            last_reviewed = dt.date.fromisoformat(raw_date)
        except ValueError as exc:
            problem("last_reviewed", f"'last_reviewed' {raw_date!r} is not a valid date (YYYY-MM-DD): {exc}")

    override, error = _text(data.get("reading_level_override"), "reading_level_override", allow_empty=True,
                            max_length=500)
    if error:
        problem("reading_level_override", error)

    for offset, message in markdown_problems(body):
        problems.append(Problem(path, body_line + offset - 1, message))

    if len(problems) > before:
        return None
    level = readability.assess(body, language=language)
    if level.verdict == readability.BLOCK and status == Article.Status.PUBLISHED and not override:
        problems.append(Problem(path, body_line, (
            f"reading level {level.describe()}: too hard to publish; make it plainer, "
            "or give a reviewer's reason in 'reading_level_override'"
        )))
        return None
    return ArticleFile(
        path=path, language=language, slug=slug, title=title, stages=list(stages), source_section=source_section,
        status=status, reviewer=reviewer, last_reviewed=last_reviewed, body_markdown=normalise_markdown(body),
        reading_level_override=override or "", reading_level=level,
    )


def _body_first_line(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").split("\n")
    closing = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    return closing + 2


def check_article_links(article: ArticleFile, known_slugs: set[str], problems: list[Problem]) -> None:
    body_line = _body_first_line(article.path)
    # Line numbers from the file as written: count within the raw body, not the normalised one.
    raw_body = "\n".join(article.path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")[body_line - 1:])
    for offset, slug in article_link_slugs(raw_body):
        if slug not in known_slugs:
            problems.append(Problem(article.path, body_line + offset - 1,
                f"link to article:{slug}, but there is no article '{slug}' in '{article.language}'"))


def check_links_stay_in_series(articles: list[ArticleFile], series: list[SeriesEntry], problems: list[Problem]) -> None:
    """A reference must lead to an article the reader will also receive: one in every series that sends it."""
    by_slug = {a.slug: a for a in articles}
    for entry in series:
        in_series = {slug for step in entry.steps for slug in step.article_slugs}
        for slug in sorted(in_series & set(by_slug)):
            article = by_slug[slug]
            body_line = _body_first_line(article.path)
            raw_body = "\n".join(article.path.read_text(encoding="utf-8").replace("\r\n",
                                                                                  "\n").split("\n")[body_line - 1:])
            for offset, target in article_link_slugs(raw_body):
                if target in by_slug and target not in in_series:
                    problems.append(Problem(article.path, body_line + offset - 1, (
                        f"link to article:{target}, which the {entry.stage} series ({entry.language}) never sends; "
                        f"its readers get '{slug}' but could not follow the link"
                    )))


def read_series(path: Path, language: str, known_slugs: set[str], problems: list[Problem]) -> list[SeriesEntry]:
    before = len(problems)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, 1, f"not UTF-8 text ({exc.reason})"))
        return []
    data, lines = _load_yaml(text, path, 1, problems)
    if len(problems) > before:
        return []
    if not isinstance(data, dict) or not data:
        problems.append(Problem(path, 1,
                                f"expected one entry per stage ({', '.join(Stage.values)}), each with name and steps"))
        return []

    def at(*key) -> int:
        return lines.get(key, lines.get(key[:-1], 1))

    series = []
    for stage, spec in data.items():
        if stage not in Stage.values:
            problems.append(Problem(path, at(stage), f"unknown stage {stage!r} (known: {', '.join(Stage.values)})"))
            continue
        if not isinstance(spec, dict):
            problems.append(Problem(path, at(stage), f"'{stage}' must have 'name' and 'steps'"))
            continue
        for key in spec:
            if key not in SERIES_KEYS:
                problems.append(Problem(path, at(stage, key),
                                        f"unknown key '{key}' (allowed: {', '.join(SERIES_KEYS)})"))
        name, error = _text(spec.get("name"), "name", max_length=200)
        if error:
            problems.append(Problem(path, at(stage, "name"), f"{stage}: {error}"))
        raw_steps = spec.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            problems.append(Problem(path, at(stage, "steps"), f"{stage}: 'steps' must be a non-empty list"))
            continue
        entry = SeriesEntry(path=path, language=language, stage=stage, name=name or "")
        for index, raw in enumerate(raw_steps):
            where = at(stage, "steps", index)
            if not isinstance(raw, dict):
                problems.append(Problem(path, where,
                                        f"{stage} step {index + 1}: expected delay_days, subject and articles"))
                continue
            for key in raw:
                if key not in STEP_KEYS + OPTIONAL_STEP_KEYS:
                    problems.append(Problem(path, at(stage, "steps", index, key),
                        f"{stage} step {index + 1}: unknown key '{key}' (allowed: "
                        f"{', '.join(STEP_KEYS + OPTIONAL_STEP_KEYS)})"))
            before_treatment = raw.get("before_treatment", False)
            if not isinstance(before_treatment, bool):
                problems.append(Problem(path, at(stage, "steps", index, "before_treatment"),
                                        f"{stage} step {index + 1}: before_treatment must be true or false"))
                before_treatment = False
            for key in STEP_KEYS:
                if key not in raw:
                    problems.append(Problem(path, where, f"{stage} step {index + 1}: '{key}' is missing"))
            delay = raw.get("delay_days")
            if "delay_days" in raw and (not isinstance(delay, int) or isinstance(delay, bool)
                                        or not 0 <= delay <= MAX_DELAY_DAYS):
                problems.append(Problem(path, at(stage, "steps", index, "delay_days"),
                    f"{stage} step {index + 1}: delay_days must be a whole number of days from 0 to {MAX_DELAY_DAYS}"))
            subject, error = _text(raw.get("subject"), "subject", max_length=SUBJECT_MAX_LENGTH)
            if "subject" in raw and error:
                problems.append(Problem(path, at(stage, "steps", index, "subject"),
                                        f"{stage} step {index + 1}: {error}"))
            slugs = raw.get("articles")
            if "articles" in raw:
                if not isinstance(slugs, list) or not slugs or not all(isinstance(s, str) for s in slugs):
                    problems.append(Problem(path, at(stage, "steps", index, "articles"),
                        f"{stage} step {index + 1}: 'articles' must be a non-empty list of article slugs"))
                    slugs = []
                for slug in slugs:
                    if slug not in known_slugs:
                        problems.append(Problem(path, at(stage, "steps", index, "articles"),
                                                f"{stage} step {index + 1}: unknown article '{slug}' in '{language}'"))
                if len(set(slugs)) != len(slugs):
                    problems.append(Problem(path, at(stage, "steps", index, "articles"),
                                            f"{stage} step {index + 1}: an article is listed twice"))
            entry.steps.append(StepEntry(
                delay_days=delay, subject=subject or "", article_slugs=list(slugs or []),
                before_treatment=before_treatment,
            ))
        series.append(entry)
    return series if len(problems) == before else []


def read_library(library_dir: Path) -> Library:
    """Parse and check the whole library. Raises LibraryError with every problem found."""
    library_dir = Path(library_dir)
    problems: list[Problem] = []
    if not library_dir.is_dir():
        raise LibraryError([Problem(library_dir, 0, "no such library directory")])
    articles: list[ArticleFile] = []
    series: list[SeriesEntry] = []
    language_dirs = sorted(p for p in library_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    for language_dir in language_dirs:
        if language_dir.name not in Language.values:
            problems.append(Problem(language_dir, 0,
                                    f"unknown language directory (known: {', '.join(Language.values)})"))
    for language_dir in language_dirs:
        language = language_dir.name
        if language not in Language.values:
            continue
        parsed = [read_article(path, language, problems) for path in sorted(language_dir.glob("*.md"))]
        language_articles = [a for a in parsed if a is not None]
        slugs = {path.stem for path in language_dir.glob("*.md")}
        for article in language_articles:
            check_article_links(article, slugs, problems)
        articles.extend(language_articles)
        series_path = language_dir / SERIES_FILE
        if series_path.exists():
            language_series = read_series(series_path, language, slugs, problems)
            check_links_stay_in_series(language_articles, language_series, problems)
            series.extend(language_series)
        else:
            problems.append(Problem(series_path, 0, "missing: each language needs its series file"))
    if problems:
        raise LibraryError(problems)
    return Library(articles=articles, series=series)
