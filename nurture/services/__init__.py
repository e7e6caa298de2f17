"""Services: the writes, one function per state change, named entity_action(*, ...).

Enqueueing background work has one way in: a service that starts work takes an `enqueue` callable
(keyword argument) and calls it once its writes commit; the interface calling it (a task, a view,
an admin action) passes the enqueuer from nurture.tasks. So no service imports nurture.tasks, and a
test or benchmark passes a list's `extend` (or None where allowed) to see what would be enqueued.
"""
