"""The public side: sign-up, the links in emails, health, the provider webhooks."""
