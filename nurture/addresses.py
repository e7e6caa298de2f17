"""One mailbox, one identity: how an email address is checked, written and compared (docs/security.md,
"One mailbox, one identity").

- What we accept (every form that takes an address): a plain address, `local@domain`. A quoted local
  part (`"gone"@example.org`, `"b\\omb"@...`) and an IP-literal domain (`user@[192.0.2.1]`) are
  valid by the RFC but reach the same mailbox as a plain spelling, or a server nobody vouches for:
  refused with a clear error (`address_problem`).
- How we write it (`address_normalise`): trimmed, the domain in lower case (and in its ASCII form);
  the local part as typed. That is the address we store, send to and keep unique (case-insensitively).
  `ann+news@example.org` stays its own address: a person may sort our emails with a tag.
- Which mailbox it reaches (`mailbox_of`): ONE key for every spelling that lands in the same inbox:
  lower case, quotes and backslashes dropped, the `+tag` dropped, dots in the local part dropped (on
  every domain: Gmail and Google-hosted domains ignore them, and treating two real mailboxes as one
  only means one of them is asked to use another address), googlemail.com read as gmail.com.
  The suppression list, the sign-up throttle and "is this your own address" compare mailboxes, so an
  erased or suppressed mailbox gets nothing under any spelling.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Domains that are one mailbox provider under two names.
SAME_PROVIDER = {"googlemail.com": "gmail.com"}

PLAIN_ADDRESS_ERROR = _(
    "Please enter a plain email address, such as name@example.org, without quotation marks, "
    "backslashes or a number in square brackets."
)


def _ascii_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid international name: compared as written
        return domain


def address_problem(value: str):
    """None for a plain address; else the error to show. Runs after Django's own email check."""
    local, _at, domain = (value or "").strip().rpartition("@")
    if any(char in local for char in '"\\') or local.startswith(".") or ".." in local:
        return PLAIN_ADDRESS_ERROR
    if domain.startswith("[") or "." not in domain:  # an IP literal, or "localhost"
        return PLAIN_ADDRESS_ERROR
    return None


def validate_plain_address(value: str) -> None:
    """A form field validator (the sign-up form, the carer's address)."""
    problem = address_problem(value)
    if problem:
        raise ValidationError(problem, code="plain_address")


def address_normalise(value: str) -> str:
    """The address as we store and send it: trimmed, the domain lower-cased and in ASCII."""
    local, at, domain = (value or "").strip().rpartition("@")
    if not at:
        return (value or "").strip()
    return f"{local}@{_ascii_domain(domain)}"


def mailbox_of(value: str) -> str:
    """The mailbox an address reaches, as one key for every spelling of it (module docstring)."""
    local, _at, domain = (value or "").strip().lower().rpartition("@")
    local = local.replace('"', "").replace("\\", "")
    local = local.split("+", 1)[0].replace(".", "")
    domain = _ascii_domain(domain)
    return f"{local}@{SAME_PROVIDER.get(domain, domain)}"


def same_mailbox(first: str, second: str) -> bool:
    return mailbox_of(first) == mailbox_of(second)
