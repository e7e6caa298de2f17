"""The article admin with its email preview: the article alone in the real email layout.

content.admin edits articles and knows nothing of emails (content imports nothing from nurture); the
engine replaces that registration with this subclass, which adds the preview field and its page at
the same URL (admin:content_article_preview). Imported by nurture.admin (the content app comes first in INSTALLED_APPS,
so its registration is there to replace).
"""
from __future__ import annotations

import re

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin

from content import readability
from content.admin import ArticleAdmin
from content.models import Article
from content.rendering import markdown_problems, normalise_markdown, render_article_html
from nurture.emails.layout import render_step_full
from nurture.emails.links import personal_for
from nurture.models import Series, Step, Subscriber

from nurture.admin.base import require_permission

PREVIEW_SUBJECT = "Article preview"


def article_email_preview_html(*, article: Article) -> str:
    """The article alone in the real email layout, through the email builder's own render, with a
    sample reader and links that do nothing (SAMPLE_TOKEN). Drafts too: staff preview before
    publishing. An unsaved Step stands in for the step, so nothing is stored or cached."""
    step = Step(series=Series(stage=article.stages[0] if article.stages else "", language=article.language),
                subject=PREVIEW_SUBJECT)
    reader = Subscriber(first_name="", language=article.language)
    personal = personal_for(reader, language=article.language, sample_links=True)
    html, _text = render_step_full(step=step, articles=[article], language=article.language, personal=personal)
    return html


def _as_unreviewed(article: Article) -> None:
    """A draft is nobody's approved text: its preview shows the draft line, not the old approval."""
    article.approved_at, article.approved_by_name, article.approved_by_role, article.next_review_on = None, "", "", None


class ArticleWithPreviewAdmin(ArticleAdmin):
    readonly_fields = [*ArticleAdmin.readonly_fields, "email_preview"]
    # content.admin's last section ("History") becomes "Preview and history", the preview first.
    fieldsets = [
        *ArticleAdmin.fieldsets[:-1],
        ("Preview and history", {"fields": ["email_preview", *ArticleAdmin.fieldsets[-1][1]["fields"]]}),
    ]

    @admin.display(description="email preview")
    def email_preview(self, obj):
        if obj is None or obj.pk is None:
            return "Save the article to see its preview."
        url = reverse("admin:content_article_preview", args=[obj.pk])
        draft = (format_html(' · <a href="{}?version=draft" target="_blank">Preview the draft awaiting approval</a>',
                             url)
                 if obj.pending_version_id else "")
        return format_html(
            '<p>The text readers receive, in the email layout, rendered by the same code as a real email '
            '(whatever its status; links in it do nothing). <a href="{}" target="_blank">Open in a new tab</a>{} · '
            'To see your changes before saving, press “Preview unsaved changes” below the form.</p>'
            '<iframe src="{}" sandbox title="Email preview" class="nurture-article-frame"></iframe>',
            url, draft, url,
        )

    def get_urls(self):
        preview = self.admin_site.admin_view(xframe_options_sameorigin(self.preview_view))
        return [path("<path:object_id>/preview/", preview, name="content_article_preview"), *super().get_urls()]

    def preview_view(self, request, object_id):
        """GET: the approved (live) text, or the pending draft with ?version=draft. POST (the change
        form's "Preview unsaved changes" button): the text in the form, unsaved, with its reading level
        and any Markdown problem shown above it, before anyone saves or approves it."""
        require_permission(request, "content.view_article")
        article = (Article.objects.select_related("pending_version").filter(pk=object_id).first()
                   if str(object_id).isdigit() else None)
        if article is None:
            raise Http404("No such article.")
        label = "Approved text" if article.is_approved else "Saved text (not approved by a clinical reviewer)"
        if request.method == "POST":
            article.title = (request.POST.get("title") or article.title).strip()[:200]
            article.body_markdown = normalise_markdown(request.POST.get("body_markdown") or "")
            problems = markdown_problems(article.body_markdown)
            article.body_html = render_article_html(article.body_markdown)
            label = "Unsaved changes" + (": " + "; ".join(f"line {n}: {m}" for n, m in problems) if problems else "")
            _as_unreviewed(article)
        elif request.GET.get("version") == "draft" and article.pending_version is not None:
            draft = article.pending_version
            article.title, article.body_markdown, article.body_html = draft.title, draft.body_markdown, draft.body_html
            label = f"Draft version {draft.version}, awaiting approval"
            _as_unreviewed(article)
        level = readability.assess(article.body_markdown, language=article.language)
        # Attributes, not a style attribute (the admin's pages carry no inline styles): a plain note on top.
        banner = format_html(
            '<table role="status" width="100%" cellpadding="10" bgcolor="#fff4d6"><tr><td>'
            "<strong>Preview: {}</strong>. Reading level: {}. The same page is the email's web "
            "version.</td></tr></table>",
            label, level.describe(),
        )
        html = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, article_email_preview_html(article=article),
                      count=1)
        response = HttpResponse(html)
        response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
        return response


if admin.site.is_registered(Article):
    admin.site.unregister(Article)
admin.site.register(Article, ArticleWithPreviewAdmin)
