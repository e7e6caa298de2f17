"""The nurture app's models, one module per side: the engine's records (engine.py) and what staff
work with around them (staff.py). Import them from here: `from nurture.models import Subscriber`."""
from nurture.models.engine import (
    CarerHandoff,
    ConsentRecord,
    Delivery,
    ProviderEvent,
    Series,
    SignupRequest,
    Step,
    StepArticle,
    Subscriber,
    Suppression,
    known_time_zones,
    validate_time_zone,
)
from nurture.models.care import Bereavement, Reply
from nurture.models.quality import Feedback, SendingBrake
from nurture.models.staff import AuditEntry, AuditEntryQuerySet, StaffTools, StepDailyResults

__all__ = [
    "AuditEntry", "AuditEntryQuerySet", "Bereavement", "CarerHandoff", "ConsentRecord", "Delivery", "Feedback",
    "ProviderEvent", "Reply", "SendingBrake", "Series", "SignupRequest", "StaffTools", "Step", "StepArticle",
    "StepDailyResults", "Subscriber",
    "Suppression", "known_time_zones", "validate_time_zone",
]
