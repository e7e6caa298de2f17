"""Spanish terminology: one term per concept, one regional variety, gender-neutral phrasing, one quotation
style (docs/content-es.md). The glossary's "not this" column is read from the doc, so the doc is the rule."""
from __future__ import annotations

import re

import pytest
import yaml

from content import sources
from content.parsing import read_library
from tests.content.seeds import LIBRARY, REPO

GLOSSARY = REPO / "docs" / "content-es.md"
CATALOGUE = REPO / "locale" / "es" / "LC_MESSAGES" / "django.po"


def banned_terms() -> list[str]:
    text = GLOSSARY.read_text(encoding="utf-8")
    table = text.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    terms = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("concept", "---"):
            terms += re.findall(r"«([^»]+)»", cells[2])
    return terms


def catalogue_strings() -> list[str]:
    """Every Spanish string in the catalogue (msgstr, with continuation lines joined), obsolete ones aside."""
    strings, current = [], None
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgstr"):
            current = [re.match(r'msgstr(?:\[\d\])? "(.*)"$', line).group(1)]
            strings.append(current)
        elif line.startswith('"') and current is not None:
            current.append(line[1:-1])
        else:
            current = None
    return ["".join(parts) for parts in strings if "".join(parts)][1:]  # [0] is the header


def spanish_texts() -> dict[str, str]:
    library = read_library(LIBRARY)
    texts = {f"es/{a.slug}.md": f"{a.title}\n{a.body_markdown}" for a in library.articles if a.language == "es"}
    series = yaml.safe_load((LIBRARY / "es" / "_series.yaml").read_text(encoding="utf-8"))
    for stage, spec in series.items():
        texts[f"es/_series.yaml {stage}"] = "\n".join([spec["name"], *(step["subject"] for step in spec["steps"])])
    credit = sources.guide_credit(language="es")
    texts["content/sources.py"] = "\n".join([credit.title, credit.copyright, credit.based_on, credit.unreviewed, *sources.SECTIONS.values()])
    for number, string in enumerate(catalogue_strings()):
        texts[f"django.po string {number}: {string[:40]}"] = string
    return texts


def test_the_glossary_lists_terms_to_avoid():
    terms = banned_terms()
    assert len(terms) >= 30 and "etapa" in terms and "pulse" in terms and "aseguradora" in terms


def test_the_catalogue_is_read():
    assert any("segunda opinión" in s for s in catalogue_strings())


@pytest.mark.parametrize("term", banned_terms())
def test_no_spanish_text_uses_a_term_the_glossary_rules_out(term):
    pattern = re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE)
    found = [where for where, text in spanish_texts().items() if pattern.search(text)]
    assert not found, f"«{term}» (docs/content-es.md says not this) in: {found}"


def test_the_check_would_catch_a_ruled_out_term():
    pattern = re.compile(r"(?<!\w)aseguradora(?!\w)", re.IGNORECASE)
    assert pattern.search("Llame a su Aseguradora.")
    assert not pattern.search("Llame a su compañía de seguros (no reaseguradoras).")


def test_one_quotation_style():
    for where, text in spanish_texts().items():
        body = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are not prose
        assert not re.search(r'["“”]', body), f"{where}: use « » for quotes"


def test_questions_and_exclamations_open_with_their_marks():
    for where, text in spanish_texts().items():
        for line in text.splitlines():
            for closing, opening in (("?", "¿"), ("!", "¡")):
                start = 0
                for index, char in enumerate(line):
                    if char in ".:" or (char in "?!" and char != closing):
                        start = index + 1
                    elif char == closing:
                        assert opening in line[start:index], f"{where}: {line[start:index + 1].strip()!r} lacks {opening}"
                        start = index + 1
