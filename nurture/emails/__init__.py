"""Building the emails: layout, per-subscriber links, the render cache, messages, batch merge fields,
each batch message's own parts, the plain-text twin and the local outbox backend. One concern per module; import from
the module."""
