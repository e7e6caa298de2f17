from __future__ import annotations

import unicodedata

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from content.models import Language, Stage
from nurture.models import Subscriber, known_time_zones

CONSENT_TEXT = _(
    "Yes, please email me information about getting a second opinion, tailored to where I am. "
    "I can change my choices or stop at any time from any email."
)


# The sign-up page's hidden field: people never see or reach it, robots fill it in.
HONEYPOT_FIELD = "website"
# Between letters: a space, a hyphen or an apostrophe (straight or typographic).
NAME_JOINERS = {" ", "-", "'", "\u2019"}
NAME_ERROR = _("Please use letters only (any alphabet), with spaces, hyphens or apostrophes between words.")


def clean_first_name_value(value: str) -> str:
    """Letters of any script (with their combining marks), and single spaces, hyphens or
    apostrophes between them: a name, never a sentence with a link or a number in it."""
    name = " ".join((value or "").split())
    if not name:
        return ""
    previous_joiner = True  # no joiner first
    for char in name:
        category = unicodedata.category(char)
        if category[0] in ("L", "M"):
            if category[0] == "M" and previous_joiner:
                raise ValidationError(NAME_ERROR, code="name")
            previous_joiner = False
        elif char in NAME_JOINERS and not previous_joiner:
            previous_joiner = True
        else:
            raise ValidationError(NAME_ERROR, code="name")
    if previous_joiner:
        raise ValidationError(NAME_ERROR, code="name")
    return name


class _BrowserTimeZoneField(forms.CharField):
    """Hidden and filled from the browser, so never an error the person cannot see (a 400 with
    nothing highlighted, again on every retry): a value too long or with a NUL is unknown, as any
    other unknown value, and clean_time_zone makes it UTC."""

    def run_validators(self, value):
        return None


class SignupForm(forms.Form):
    """The documented sign-up interface; the organisation's own site may post these fields to `/`."""

    email = forms.EmailField(label=_("Email address"), max_length=254)
    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices, initial=Language.EN)
    time_zone = _BrowserTimeZoneField(required=False, widget=forms.HiddenInput)
    consent = forms.BooleanField(label=CONSENT_TEXT, required=True)

    def clean_first_name(self):
        return clean_first_name_value(self.cleaned_data["first_name"])

    def clean_time_zone(self):
        # Filled in by the page's script from the browser; an unknown or missing value falls back to UTC.
        value = self.cleaned_data.get("time_zone") or ""
        return value if value in known_time_zones() else "UTC"


class PreferencesForm(forms.ModelForm):
    # Same wording as the sign-up form, and no empty "---------" choice for the radio buttons.
    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices)
    cadence = forms.ChoiceField(
        label=_("How often would you like our emails?"), choices=Subscriber.Cadence.choices, widget=forms.RadioSelect
    )

    class Meta:
        model = Subscriber
        fields = ["first_name", "stage", "language", "cadence"]

    def clean_first_name(self):
        return clean_first_name_value(self.cleaned_data["first_name"])
