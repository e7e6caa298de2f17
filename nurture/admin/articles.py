"""The article admin with its email preview: the article alone in the real email layout.

content.admin edits articles and knows nothing of emails (content imports nothing from nurture); the
engine replaces that registration with this subclass, which adds the preview field and its page at
the same URL (admin:content_article_preview). Imported by nurture.admin (the content app comes first in INSTALLED_APPS, so its registration is there to replace).
"""
from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin

from content.admin import ArticleAdmin
from content.models import Article
from nurture.emails.layout import render_step_full
from nurture.emails.links import personal_for
from nurture.models import Series, Step, Subscriber

PREVIEW_SUBJECT = "Article preview"


def article_email_preview_html(*, article: Article) -> str:
    """The article alone in the real email layout, through the email builder's own render, with a
    sample reader and links that do nothing (SAMPLE_TOKEN). Drafts too: staff preview before
    publishing. An unsaved Step stands in for the step, so nothing is stored or cached."""
    step = Step(series=Series(stage=article.stages[0] if article.stages else "", language=article.language), subject=PREVIEW_SUBJECT)
    reader = Subscriber(first_name="", language=article.language)
    personal = personal_for(reader, language=article.language, sample_links=True)
    html, _text = render_step_full(step=step, articles=[article], language=article.language, personal=personal)
    return html


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
        return format_html(
            '<p>The saved version, in the email layout, rendered by the same code as a real email '
            '(whatever its status; links in it do nothing). <a href="{}" target="_blank">Open in a new tab</a></p>'
            '<iframe src="{}" sandbox title="Email preview" style="width:100%;max-width:680px;height:480px;border:1px solid #ccc;background:#fff"></iframe>',
            url, url,
        )

    def get_urls(self):
        preview = self.admin_site.admin_view(xframe_options_sameorigin(self.preview_view))
        return [path("<path:object_id>/preview/", preview, name="content_article_preview"), *super().get_urls()]

    def preview_view(self, request, object_id):
        article = self.get_object(request, object_id)  # None for a bad or unknown id
        if article is None or not self.has_view_permission(request, article):
            raise Http404("No such article.")
        return HttpResponse(article_email_preview_html(article=article))


if admin.site.is_registered(Article):
    admin.site.unregister(Article)
admin.site.register(Article, ArticleWithPreviewAdmin)
