"""Signals content sends; the engine listens (content imports nothing from nurture)."""
from django.dispatch import Signal

# An article's text was approved: kwargs article, version (the ArticleVersion), user. The engine
# records it in the audit trail (nurture.receivers).
article_approved = Signal()
