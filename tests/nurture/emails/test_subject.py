"""Subjects show on lock screens: they must never name a diagnosis or the reader's stage."""
from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.forms import modelform_factory
from django.utils import translation

from content.models import Stage
from nurture.models import Series, Step
from nurture.validators import diagnosis_words_in, validate_subject_has_no_diagnosis
from support.library import LANGUAGES, LIBRARY


@pytest.mark.parametrize(
    "subject",
    [
        "Living with cancer",
        "Your CANCER questions",
        "Tu cáncer y tú",
        "Tumour boards explained",
        "Sobre el tumor",
        "Lymphoma: a second look",
        "Después del diagnóstico",
        "Newly diagnosed? Start here",
        "Recently diagnosed",
        "In treatment",
        "Durante el tratamiento",
        "Life in remission",
        "En remisión",
        "Chemotherapy and you",
        "Antes de la quimio",
        "Metastatic disease",
        "Oncology appointments",
        "Si hay una recaída",
    ],
)
def test_diagnosis_and_stage_words_are_rejected(subject):
    with pytest.raises(ValidationError) as error:
        validate_subject_has_no_diagnosis(subject)
    assert "must not name a diagnosis" in str(error.value)


@pytest.mark.parametrize("subject", ["Welcome to your guide", "How to bring it up", "Cómo plantear el tema", "Papers to have ready"])
def test_ordinary_subjects_pass(subject):
    validate_subject_has_no_diagnosis(subject)


def test_stage_labels_in_every_language_are_caught():
    for language in LANGUAGES:
        with translation.override(language):
            for label in Stage.labels:
                assert diagnosis_words_in(str(label)), (language, label)


def test_every_default_step_subject_passes():
    subjects = []
    for language in LANGUAGES:
        plan = yaml.safe_load((LIBRARY / language / "_series.yaml").read_text(encoding="utf-8"))
        subjects += [step["subject"] for spec in plan.values() for step in spec["steps"]]
    assert len(subjects) >= 40
    assert {s: diagnosis_words_in(s) for s in subjects if diagnosis_words_in(s)} == {}


@pytest.mark.django_db
def test_model_validation_and_admin_form_reject_a_diagnosis_subject():
    series = Series.objects.create(stage="in_treatment", language="en", name="S")
    step = Step(series=series, position=0, delay_days=0, subject="Coping with chemo")
    with pytest.raises(ValidationError) as error:
        step.full_clean()
    assert "subject" in error.value.message_dict
    # The admin builds a ModelForm for Step; model field validators run there too.
    form = modelform_factory(Step, fields=["series", "position", "delay_days", "subject"])(
        data={"series": series.pk, "position": 0, "delay_days": 0, "subject": "Tras el diagnóstico"}
    )
    assert not form.is_valid() and "diagnostico" in form.errors["subject"][0]
