"""Shared by tests, benchmarks and scripts (not part of the product).

fake_provider  a fake Postmark / Mailgun HTTP API on 127.0.0.1 for anymail's real backends
workers        real Celery worker and beat subprocesses over Redis and the test database
library        the default library (content/library/) loaded as `manage.py load_content` does
"""
