"""The words a person is shown when they agree to or change something, kept with each consent record
in their language (ConsentRecord.consent_text). One place, so the page and the record say the same.

No wording names a stage or a date: the record's kind says what changed, and health data stays in
the subscriber row only."""
from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _, ngettext

SIGNUP = _(
    "Yes, please email me information about getting a second opinion, tailored to where I am. "
    "I can change my choices or stop at any time from any email."
)
CONFIRM = _("Yes, start my emails.")
STAGE_CHANGE = _("I changed which best describes me now. My emails will follow my new choice.")
LANGUAGE_CHANGE = _("I changed the language of my emails.")
CADENCE_CHANGE = _("I changed how often I would like your emails.")
TREATMENT_DATE_GIVEN = _(
    "I gave the date my treatment is planned to start, so the emails that matter before it arrive in time. "
    "I can change or remove it at any time."
)
TREATMENT_DATE_REMOVED = _("I removed the date my treatment is planned to start.")
RESUME = _("Start my emails again, from where they stopped.")
RESUME_AUTOMATIC = _("My pause ended and my emails started again, from where they stopped.")
UNSUBSCRIBE = _("Stop all emails.")
CARER_REQUESTED_INSTEAD = _(
    "Please send my emails to the person helping me, instead of to me, once they agree. "
    "Either of us can stop this at any time."
)
CARER_REQUESTED_AS_WELL = _(
    "Please send my emails to the person helping me as well as to me, once they agree. "
    "Either of us can stop this at any time."
)
CARER_CONFIRMED = _(
    "I agree to receive emails with information about getting a second opinion for the person who asked me. "
    "I can stop at any time."
)
CARER_STOPPED = _("Stop sending the emails to the person helping.")
NAME_CHANGE = _("I changed the name you greet me by.")
# Not something the person was shown: the record of why emails to their address stopped without
# their asking on our pages (a bounce, a spam complaint, a "stop" at the email provider, or the
# provider refusing the address); the record's source says which.
SUPPRESSED = _("Emails to this address stopped: it could not receive them, or its owner asked the email provider "
               "to stop them.")
DELIVERY_PREFERENCES = _("I changed the days, the time of day or the format of my emails.")
BEREAVEMENT = _("We were told that this person has died. No more emails will be sent.")


def pause(weeks: int | None) -> str:
    if weeks is None:
        return str(_("Pause my emails until I start them again."))
    return ngettext(
        "Pause my emails for %(weeks)d week, then start again from where they stopped.",
        "Pause my emails for %(weeks)d weeks, then start again from where they stopped.",
        weeks,
    ) % {"weeks": weeks}


def in_language(text, language: str) -> str:
    """A lazy string (or a function of no argument) as shown in `language`."""
    with translation.override(language):
        return str(text() if callable(text) else text)
