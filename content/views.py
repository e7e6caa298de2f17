"""The public guide pages: thin views over content.selectors and content.guide.

Nothing personal: no token, no cookie read or set, no tracking; the same page for everyone, so it is
cacheable (Cache-Control: public). An unknown language or article gets a plain page (404) with a way on."""
from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from content import selectors, sources
from content.guide import article_body_with_guide_links
from content.models import Language

PAGE_MAX_AGE = 3600


def _guide_response(request, template: str, context: dict, *, language: str, status: int = 200):
    with translation.override(language):
        response = render(request, template,
            {"credit": sources.guide_credit(language=language), "language": language, **context}, status=status)
    response["Content-Language"] = language
    return response


def _missing(request, language: str):
    language = language if language in Language.values else "en"
    return _guide_response(request, "content/guide_missing.html", {}, language=language, status=404)


@require_safe
@cache_control(public=True, max_age=PAGE_MAX_AGE)
def guide_index(request, language: str):
    if language not in Language.values:
        return _missing(request, language)
    return _guide_response(request, "content/guide_index.html",
                           {"articles": selectors.articles_published(language=language)}, language=language)


@require_safe
@cache_control(public=True, max_age=PAGE_MAX_AGE)
def guide_article(request, language: str, slug: str):
    article = selectors.article_published(language=language, slug=slug) if language in Language.values else None
    if article is None:
        return _missing(request, language)
    context = {
        "article": article,
        "body_html": article_body_with_guide_links(article=article),
        "credit_line": sources.guide_credit(language=language).based_on_line(
            sources.section_titles(source_section=article.source_section, language=language)),
        "unreviewed": not article.reviewer.strip(),
    }
    return _guide_response(request, "content/guide_article.html", context, language=language)
