"""What sending tells the rest of the engine without importing it (the receivers, in nurture/receivers.py,
connect it to the services and tasks)."""
from django.dispatch import Signal

# A carer's copy was refused by the provider at send time (the carer's address is already suppressed):
# the hand-off must end and the subscriber be told, as for a carer's bounce. Sent with `handoff_id`.
carer_address_refused = Signal()
