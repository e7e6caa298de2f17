"""Where an article's public guide page lives, and its body with links between articles pointing there.

The pages carry nothing personal (no token, no tracking, the same for everyone), so emails can link to them
and caches can keep them. That a reference points only at an article the reader's series sends is checked
where articles and series meet: content.parsing (load_content) and tests/content.
"""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from content.models import Article
from content.rendering import render_article_html


def guide_article_url(*, language: str, slug: str) -> str:
    """The absolute address of an article's guide page (emails need absolute links)."""
    return settings.SITE_URL.rstrip("/") + reverse("content:guide_article", kwargs={"language": language, "slug": slug})


def article_body_with_guide_links(*, article: Article) -> str:
    """The article's HTML with its references to other articles linked to their guide pages."""
    return render_article_html(article.body_markdown,
                               article_url=lambda slug: guide_article_url(language=article.language, slug=slug))
