"""Optional error reports (settings call init_sentry only when SENTRY_DSN is set; otherwise nothing
here is imported and sentry_sdk never loads).

Health-data rule: a report carries no address, no stage and no personal link. So: no default PII,
no request bodies, cookies or local variables, and every event and breadcrumb goes through
scrub() before it leaves: addresses become "[address]", stage values and their labels (in every
language) "[stage]", the token in a personal link "[token]", and any field named like stage, email,
first_name or treatment is dropped.
"""
from __future__ import annotations

import re
from functools import lru_cache

from nurture.log_redaction import redact_text

STAGE = "[stage]"
REMOVED = "[removed]"
SENSITIVE_KEY = re.compile(r"stage|e-?mail|first_name|last_name|treatment|address|token|cookie|password|secret", re.I)


def init_sentry(*, dsn: str, environment: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=lambda event, hint: scrub(event),
        before_breadcrumb=lambda crumb, hint: scrub(crumb),
    )


@lru_cache(maxsize=1)
def stage_words() -> re.Pattern:
    """Stage values and their labels in every language the site speaks."""
    words = {"recently_diagnosed", "in_treatment", "in_remission"}
    try:
        from django.conf import settings
        from django.utils import translation

        from content.models import Stage

        words |= set(Stage.values)
        for code, _name in settings.LANGUAGES:
            with translation.override(code):
                words |= {str(label) for label in Stage.labels}
    except Exception:  # apps not ready (an error during start-up): the values above still go
        stage_words.cache_clear()
    ordered = sorted(words, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered), re.I)


def scrub_text(text: str) -> str:
    text = redact_text(text)
    return stage_words().sub(STAGE, text)


def scrub(value, key: str = ""):
    if key and SENSITIVE_KEY.search(key):
        return REMOVED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        cleaned = {k: scrub(v, str(k)) for k, v in value.items() if k not in DROP_KEYS}
        return cleaned
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


# Whole parts of an event that may quote what a person typed or sent.
DROP_KEYS = {"data", "cookies", "query_string", "user", "vars", "body"}
