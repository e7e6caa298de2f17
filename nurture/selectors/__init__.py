"""Reads, by entity: subscribers (and their carers), deliveries, series (steps and articles as the
engine sees them), results, staff. One question, one function; import it from its module
(`from nurture.selectors.subscribers import is_suppressed`). Reads never call a service."""
