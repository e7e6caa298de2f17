"""The deployment files: docker-compose.yml is valid and has every service the README names.
(No container engine runs on these machines, so the file is checked, not started.)"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_VARIABLES = {"DATABASE_URL", "CELERY_BROKER_URL", "SITE_URL", "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "DEFAULT_FROM_EMAIL"}


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_six_services_with_health_checks():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat", "mailpit"}
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"]["test"], name


def test_app_services_share_one_image_and_the_configuration_variables():
    services = compose()["services"]
    app = [services[n] for n in ("web", "worker", "beat")]
    assert len({s["image"] for s in app}) == 1 and all(s["build"] == "." for s in app)
    for service in app:
        assert APP_VARIABLES <= set(service["environment"])
    assert services["web"]["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["EMAIL_HOST"] == "mailpit"


def test_every_service_the_readme_names_is_in_compose():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("docker compose", 1)[1]
    named = set(re.findall(r"`(postgres|redis|web|worker|beat|mailpit)`", section))
    assert named == {"postgres", "redis", "web", "worker", "beat", "mailpit"}
    assert named <= set(compose()["services"])


def test_dependencies_are_pinned():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    assert len(listed) > 10
    for requirement in listed:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", requirement), requirement


def test_every_environment_variable_the_settings_read_is_documented_in_the_readme():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|int|float|bool|url|database)\(\s*"([A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'env_int\("([A-Z0-9_]+)"', (ROOT / "config" / "env.py").read_text()))
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in read if f"`{name}`" not in readme)
    assert len(read) > 20
    assert undocumented == []
