"""Sending: one home for handing series emails to the provider."""
