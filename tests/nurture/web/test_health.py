"""/healthz: 200 when the database and the broker answer, 503 naming the one that does not."""
import pytest


@pytest.mark.django_db
def test_healthz_ok_when_database_and_broker_answer(client, settings, tmp_path):
    from config.celery import app

    app.conf.broker_url = "memory://"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_names_the_broker_when_it_does_not_answer(client, settings):
    from config.celery import app

    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
