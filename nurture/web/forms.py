from __future__ import annotations

import re
import unicodedata

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from content.models import Language, Stage
from nurture import wording
from nurture.addresses import address_normalise, validate_plain_address
from nurture.models import CarerHandoff, Feedback, Subscriber, known_time_zones
from nurture.services.carers import carer_address_problem
from nurture.services.subscribers import treatment_date_problem

CONSENT_TEXT = wording.SIGNUP


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


class AddressField(forms.EmailField):
    """Every form field that takes an address: a plain address only (no quoted local part, no
    IP-literal domain: the same mailbox under another spelling), written with its domain in lower
    case (nurture.addresses)."""

    default_validators = [*forms.EmailField.default_validators, validate_plain_address]

    def to_python(self, value):
        value = super().to_python(value)
        return address_normalise(value) if value else value

    def run_validators(self, value):
        """One message per field (the error summary links each message to the field): what is not an
        address at all hears only "enter an address like..."; an address that is not a plain one
        (quoted, an IP literal) hears why."""
        try:
            super().run_validators(value)
        except ValidationError as error:
            plain = [e for e in error.error_list if e.code == "plain_address"]
            raise ValidationError(plain[:1] if plain and "@" in value else error.error_list[:1]) from None


# A choice that is not offered: say so without repeating what was sent (Django's own message
# echoes the value, which may be thousands of characters of someone's junk).
_CHOOSE_ONE = {"invalid_choice": _("Please choose one of the options shown.")}

# What is wrong, in words that fit the field (never "This field is required." everywhere): the
# error summary and the field both say it, and a screen reader hears it with the field.
_EMAIL_LIKE = _("Enter an email address like name@example.org.")
_EMAIL_ERRORS = {"required": _("Enter your email address, like name@example.org."), "invalid": _EMAIL_LIKE}
_STAGE_ERRORS = {**_CHOOSE_ONE, "required": _("Choose the answer that best describes you now.")}
_LANGUAGE_ERRORS = {**_CHOOSE_ONE, "required": _("Choose the language for your emails.")}
_CADENCE_ERRORS = {**_CHOOSE_ONE, "required": _("Choose how often you would like our emails.")}
_CONSENT_ERRORS = {"required": _("Tick the box to agree, so that we can send you these emails.")}


class _SignupChoicesCleaning:
    """The checks a sign-up's choices get, on the sign-up form and again on the confirm page."""

    def clean_treatment_date(self):
        return _clean_treatment_date(self.cleaned_data.get("treatment_date"))

    def clean_first_name(self):
        return clean_first_name_value(self.cleaned_data["first_name"])


class SignupForm(_SignupChoicesCleaning, forms.Form):
    """The documented sign-up interface; the organisation's own site may post these fields to `/`."""

    email = AddressField(label=_("Email address"), max_length=254, error_messages=_EMAIL_ERRORS)
    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect,
                              error_messages=_STAGE_ERRORS)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices, initial=Language.EN,
                                 error_messages=_LANGUAGE_ERRORS)
    time_zone = _BrowserTimeZoneField(required=False, widget=forms.HiddenInput)
    consent = forms.BooleanField(label=CONSENT_TEXT, required=True, error_messages=_CONSENT_ERRORS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Optional, for "recently diagnosed" only (the service keeps it for no other stage).
        self.fields["treatment_date"] = treatment_date_field()
        self.fields["treatment_date"].help_text = _(
            "Only if you are recently diagnosed. Leave it empty if you do not know yet."
        )
        self.order_fields(["email", "first_name", "stage", "treatment_date", "language", "time_zone", "consent"])

    def clean_time_zone(self):
        # Filled in by the page's script from the browser; an unknown or missing value falls back to UTC.
        value = self.cleaned_data.get("time_zone") or ""
        return value if value in known_time_zones() else "UTC"


class ConfirmForm(_SignupChoicesCleaning, forms.Form):
    """The confirm page (/confirm/<token>/): the choices that will apply, as the sign-up gave them,
    for the person to check and change before confirming. Someone else may have posted the sign-up
    with their address: nothing they chose applies unseen."""

    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect,
                              error_messages=_CHOOSE_ONE)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices,
                                 error_messages=_CHOOSE_ONE)
    time_zone = forms.ChoiceField(
        label=_("Your time zone"), help_text=_("We send your emails during the day where you live."),
        error_messages=_CHOOSE_ONE,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(zone, zone.replace("_", " ")) for zone in sorted(known_time_zones())]
        self.fields["treatment_date"] = treatment_date_field()
        self.fields["treatment_date"].help_text = _(
            "Only if you are recently diagnosed. Leave it empty if you do not know yet."
        )
        self.order_fields(["first_name", "stage", "treatment_date", "language", "time_zone"])

    @classmethod
    def from_post(cls, post, choices: dict) -> ConfirmForm:
        """Bound to what was posted; a field left out of the post keeps the sign-up's value (a script
        or an older page may post the button alone). A field posted with a bad value is an error."""
        data = {name: "" if value is None else str(value) for name, value in choices.items()}
        data.update({name: post[name] for name in data if name in post})
        return cls(data)


class PreferencesForm(forms.ModelForm):
    # Same wording as the sign-up form, and no empty "---------" choice for the radio buttons.
    first_name = forms.CharField(label=_("First name (optional)"), max_length=100, required=False)
    stage = forms.ChoiceField(label=_("Which best describes you now?"), choices=Stage.choices, widget=forms.RadioSelect,
                              error_messages=_STAGE_ERRORS)
    language = forms.ChoiceField(label=_("Language for your emails"), choices=Language.choices,
                                 error_messages=_LANGUAGE_ERRORS)
    cadence = forms.ChoiceField(
        label=_("How often would you like our emails?"), choices=Subscriber.Cadence.choices, widget=forms.RadioSelect,
        error_messages=_CADENCE_ERRORS,
    )

    class Meta:
        model = Subscriber
        fields = ["first_name", "stage", "language", "cadence"]

    def clean_first_name(self):
        return clean_first_name_value(self.cleaned_data["first_name"])


# --- care features ----------------------------------------------------------------------

PAUSE_CHOICES = [(2, _("2 weeks")), (4, _("1 month")), (13, _("3 months"))]
_NOT_OFFERED = _("Choose one of the pause lengths offered.")


class PauseForm(forms.Form):
    """The pause link's and the preference centre's one field, `weeks` (2, 4 or 13). A pause always
    has a length: pressing "Pause" without one asks for it, rather than pausing for ever. The pause
    link's page starts with the shortest chosen (preselect); the preference centre with none."""

    weeks = forms.TypedChoiceField(
        label=_("How long would you like a break?"), choices=PAUSE_CHOICES, coerce=int, empty_value=None,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _NOT_OFFERED, "required": _("Choose how long you would like a break.")},
    )

    def __init__(self, *args, preselect: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if preselect:
            self.fields["weeks"].initial = 2


def treatment_date_field() -> forms.DateField:
    return forms.DateField(
        label=_("Date your treatment is planned to start (optional)"),
        help_text=_("Leave it empty if you do not know yet."),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter a date, for example 2027-03-15.")},
    )


def _clean_treatment_date(value):
    problem = treatment_date_problem(value)
    if problem:
        raise forms.ValidationError(problem)
    return value


class TreatmentDateForm(forms.Form):
    treatment_date = treatment_date_field()

    def clean_treatment_date(self):
        return _clean_treatment_date(self.cleaned_data.get("treatment_date"))


class CarerForm(forms.Form):
    carer_email = AddressField(
        label=_("Email address of the person helping you"), max_length=254,
        error_messages={"required": _("Enter the email address of the person helping you."), "invalid": _EMAIL_LIKE},
    )
    mode = forms.ChoiceField(
        label=_("Send my emails to them"), choices=CarerHandoff.Mode.choices, widget=forms.RadioSelect,
        initial=CarerHandoff.Mode.INSTEAD,
        error_messages={**_CHOOSE_ONE, "required": _("Choose whether they get your emails instead of you or as well.")},
    )

    def __init__(self, *args, subscriber: Subscriber, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscriber = subscriber

    def clean_carer_email(self):
        address = self.cleaned_data["carer_email"].strip()
        problem = carer_address_problem(subscriber=self.subscriber, carer_email=address)
        if problem:
            raise forms.ValidationError(problem)
        return address


WEEKDAYS = [(0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")), (3, _("Thursday")), (4, _("Friday")),
            (5, _("Saturday")), (6, _("Sunday"))]
DAY_PART_LABELS = {"morning": _("In the morning"), "afternoon": _("In the afternoon"), "evening": _("In the evening")}


class DeliveryPreferencesForm(forms.Form):
    """Days and hours that suit them, and how their emails look (preference centre, action "timing")."""

    quiet_days = forms.TypedMultipleChoiceField(
        label=_("Days you would rather not get our emails"), choices=WEEKDAYS, coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("Please choose one of the options shown.")},
    )
    time_of_day = forms.ChoiceField(
        label=_("Time of day that suits you"), required=False, widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Please choose one of the options shown.")},
    )
    plain_text = forms.BooleanField(label=_("Plain-text emails: just the words and the links, no layout"),
                                    required=False)
    larger_text = forms.BooleanField(label=_("Larger text in emails"), required=False)

    def __init__(self, *args, parts: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_of_day"].choices = [("", _("Any time")), *((p, DAY_PART_LABELS[p]) for p in parts)]

    def clean_quiet_days(self):
        days = self.cleaned_data["quiet_days"]
        if len(set(days)) == 7:
            raise forms.ValidationError(_("Leave at least one day free for our emails, or pause them instead."))
        return days


_HTML_TAG = re.compile(r"<\s*[a-zA-Z/!?]")


class FeedbackForm(forms.Form):
    """The answer page behind an email's "Was this helpful?" (or impact) link: one button, an
    optional short comment. The delivery field must be the link's own (checked by the view)."""

    delivery = forms.IntegerField(widget=forms.HiddenInput)
    answer = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label=_("Your answer"))
    comment = forms.CharField(
        required=False, max_length=Feedback.COMMENT_MAX_CHARS, strip=True,
        label=_("Anything to add? (optional)"),
        help_text=_("Please do not write your name, email address or anything about your health here."),
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": Feedback.COMMENT_MAX_CHARS}),
    )

    def __init__(self, *args, question: str, **kwargs):
        super().__init__(*args, **kwargs)
        if question == Feedback.Question.IMPACT:
            self.fields["answer"].choices = [(str(n), str(n)) for n in range(1, 6)]
            self.fields["answer"].label = _("1 = not at all, 5 = very much")
        else:
            self.fields["answer"].choices = [("1", _("Yes")), ("0", _("No"))]

    def clean_comment(self):
        comment = self.cleaned_data["comment"]
        if "\x00" in comment or _HTML_TAG.search(comment):
            raise ValidationError(_("Please write plain text only, without HTML."), code="plain_text")
        return comment
