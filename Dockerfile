# One image for web, worker and beat (the command differs per service in docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 1000 nurture
COPY pyproject.toml ./
COPY . .
RUN pip install . && mkdir -p /app/var && chown -R nurture /app/var
USER nurture
EXPOSE 8000
CMD ["python", "manage.py", "runserver", "0.0.0.0:8000", "--noreload"]
