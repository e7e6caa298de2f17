# One image for the app services (migrate, web, worker, beat); the command differs per service in
# docker-compose.yml. The web command is gunicorn (gunicorn.conf.py); Django's development server is only for `make run`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings NURTURE_VAR_DIR=/app/var
WORKDIR /app
RUN useradd --create-home --uid 1000 nurture
# Dependencies first (their layer is reused while only the code changes).
COPY pyproject.toml ./
RUN pip install .
COPY . .
# Static files (the admin's CSS and JS) collected, hashed and compressed into /app/var/static at
# build time; WhiteNoise serves them. They stay owned by root: the app user cannot change them.
RUN python manage.py collectstatic --noinput
# The journal's directory exists owned by the app user, so the named volume mounted there
# (docker-compose.yml) starts with that owner.
RUN mkdir -p /app/var/outbox /app/var/journal && chown nurture /app/var /app/var/outbox /app/var/journal
USER nurture
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "config.wsgi:application"]
