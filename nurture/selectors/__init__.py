"""Reads, by entity (one module each). Transitional: the names of the former nurture/selectors.py."""
from nurture.selectors.series import *  # noqa: F401,F403
