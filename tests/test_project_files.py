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


SERVICES = {"postgres", "redis", "migrate", "web", "worker", "worker-service", "beat", "mailpit"}
APP_SERVICES = ("migrate", "web", "worker", "worker-service", "beat")


def test_compose_has_every_service_and_the_long_running_ones_have_health_checks():
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service and service["healthcheck"]["test"], name


def test_app_services_share_one_image_and_the_configuration_variables():
    services = compose()["services"]
    app = [services[n] for n in APP_SERVICES]
    assert len({s["image"] for s in app}) == 1 and all(s["build"] == "." for s in app)
    for service in app:
        assert APP_VARIABLES <= set(service["environment"])
    assert services["web"]["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["EMAIL_HOST"] == "mailpit"


def test_migrate_runs_once_and_the_app_services_wait_for_it():
    services = compose()["services"]
    migrate = services["migrate"]["command"]
    assert all(step in migrate for step in ("migrate --noinput", "load_content", "ensure_schedule"))
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "worker-service", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "migrate" not in services[name]["command"], name  # replicas never race to migrate


def test_workers_consume_separate_queues_and_service_emails_have_their_own():
    services = compose()["services"]
    queues = {name: re.search(r"-Q (\S+)", services[name]["command"]).group(1).split(",") for name in ("worker", "worker-service")}
    assert queues["worker-service"] == ["service"]
    assert {"sends", "periodic"} <= set(queues["worker"]) and "service" not in queues["worker"]


def test_state_lives_in_named_volumes_and_redis_keeps_an_append_only_file():
    data = compose()
    services = data["services"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert any(v.startswith("redisdata:") for v in services["redis"]["volumes"])
    assert set(data["volumes"]) >= {"pgdata", "redisdata"}
    assert "--appendonly yes" in services["redis"]["command"]


def test_the_answer_journal_of_the_sending_worker_is_on_a_volume_the_app_user_owns():
    """docs/scheduler.md: the journal must outlive the worker container."""
    data = compose()
    assert "journal" in data["volumes"]
    mounts = dict(v.split(":", 1) for v in data["services"]["worker"].get("volumes", []))
    assert mounts.get("journal") == "/app/var/journal"  # NURTURE_JOURNAL_DIR: NURTURE_VAR_DIR/journal
    assert re.search(r"mkdir -p [^\n]*/app/var/journal[^\n]*chown nurture[^\n]*/app/var/journal", (ROOT / "Dockerfile").read_text())


def test_the_image_runs_gunicorn_as_a_non_root_user_with_static_files_collected_at_build():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    import json
    # The image's default command is exactly the web service's (the smoke test runs the latter).
    assert json.loads(cmd) == compose()["services"]["web"]["command"].split()
    assert json.loads(cmd)[0] == "gunicorn"
    assert re.search(r"^RUN python manage.py collectstatic --noinput$", dockerfile, re.M)
    assert dockerfile.index("collectstatic") < dockerfile.index("USER nurture")


def test_runserver_appears_only_in_the_local_demo():
    assert "runserver" in (ROOT / "Procfile.dev").read_text()
    assert "runserver" not in (ROOT / "Dockerfile").read_text()
    assert "runserver" not in (ROOT / "docker-compose.yml").read_text()


def test_every_service_the_readme_names_is_in_compose():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running with docker compose", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(postgres|redis|migrate|web|worker|worker-service|beat|mailpit)`", section))
    assert named == SERVICES


def test_dependencies_are_pinned():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    assert len(listed) > 10
    for requirement in listed:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", requirement), requirement


def test_every_environment_variable_the_settings_read_is_documented_in_the_readme():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|int|float|bool|url|database|choice|header)\(\s*"([A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'env_int\("([A-Z0-9_]+)"', (ROOT / "config" / "env.py").read_text()))
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in read if f"`{name}`" not in readme)
    assert len(read) > 20
    assert undocumented == []


def test_make_run_honours_a_port_and_site_url_follows_it():
    """`PORT=8010 make run`: honcho hands the web process that port, and SITE_URL (the links in
    emails) follows it unless it is set."""
    import subprocess

    dry = subprocess.run(["make", "-n", "run", "PORT=8010"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "honcho -f Procfile.dev start -p 8010" in dry.stdout
    assert "runserver 127.0.0.1:$PORT" in (ROOT / "Procfile.dev").read_text()
    # Target-specific and conditional: the demo's links follow PORT, an explicit SITE_URL wins.
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run setup: export SITE_URL \?= http://127\.0\.0\.1:\$\(PORT\)$", makefile, re.M)
    assert re.search(r"^PORT \?= 8000$", makefile, re.M)


def test_migrations_are_named_for_what_they_change_not_for_a_work_item():
    names = [p.name for app in ("nurture", "content") for p in (ROOT / app / "migrations").glob("0*.py")]
    assert names  # the walk found the migrations
    assert [n for n in names if re.search(r"issue", n, re.IGNORECASE)] == []


def test_make_test_runs_the_pinned_linter_before_the_suite():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: install\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("ruff check .") < recipe.index("run_tests.py")
    assert '"ruff==' in (ROOT / "pyproject.toml").read_text()
