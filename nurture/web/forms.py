from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from content.models import Language, Stage
from nurture.models import Subscriber

CONSENT_TEXT = _(
    "Yes, please email me information about getting a second opinion, tailored to where I am. "
    "I can change my choices or stop at any time from any email."
)


class SignupForm(forms.Form):
    """The documented sign-up interface; the organisation's own site may post these fields to `/`."""

    email = forms.EmailField(label=_("Email address"), max_length=254)
    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices, initial=Language.EN)
    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    consent = forms.BooleanField(label=CONSENT_TEXT, required=True)

    def clean_first_name(self):
        return " ".join(self.cleaned_data["first_name"].split())

    def clean_time_zone(self):
        # Filled in by the page's script from the browser; an unknown or missing value falls back to UTC.
        value = self.cleaned_data.get("time_zone") or ""
        return value if value in zoneinfo.available_timezones() else "UTC"


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
        return " ".join(self.cleaned_data["first_name"].split())
