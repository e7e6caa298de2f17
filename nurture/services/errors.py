"""What a service raises when a person's input is refused: shared by the services that take input
(subscribers, carers), so neither has to import the other for it."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input a person gave: shown as the field's error in their language; nothing was changed."""

    def __init__(self, field: str, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
