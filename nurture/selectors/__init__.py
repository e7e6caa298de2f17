"""Reads, by entity: subscribers (and their carers), deliveries, series (steps and articles as the
engine sees them), results, staff. One question, one function; import it from its module
(`from nurture.selectors.subscribers import is_suppressed`). Reads never call a service.

The three names below are the sender's (nurture/services/sending.py and deliveries.py call
`selectors.X`) until its modules move to nurture/sending/; nothing else imports them from here."""
from nurture.selectors.deliveries import deliveries_articles  # noqa: F401
from nurture.selectors.subscribers import is_suppressed, suppressed_among  # noqa: F401
