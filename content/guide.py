"""Where an article's public guide page lives, and its body with links between articles pointing there.

The pages carry nothing personal (no token, no tracking, the same for everyone), so emails can link to them
and caches can keep them. A link from one article to another becomes a real link only to an article the
caller allows (an email: the reader's own series), else it stays bold text (content.rendering).
"""
from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.urls import reverse

from content.models import Article
from content.rendering import render_article_html


def guide_article_url(*, language: str, slug: str) -> str:
    """The absolute address of an article's guide page (emails need absolute links)."""
    return settings.SITE_URL.rstrip("/") + reverse("content:guide_article", kwargs={"language": language, "slug": slug})


def article_body_with_guide_links(*, article: Article, allowed_slugs: Collection[str] | None = None) -> str:
    """The article's HTML with its references to other articles linked to their guide pages;
    with `allowed_slugs`, only references to those (the rest stay bold, with no link)."""
    def url(slug: str) -> str | None:
        if allowed_slugs is not None and slug not in allowed_slugs:
            return None
        return guide_article_url(language=article.language, slug=slug)

    return render_article_html(article.body_markdown, article_url=url)
