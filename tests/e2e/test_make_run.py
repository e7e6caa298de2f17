"""`make run` stays readable: Procfile.dev's web, worker and beat under honcho, as `make run`
starts them (SQLite and the filesystem broker, no server needed), with a short demo day so the
periodic tasks tick every few seconds. While nothing is due they say nothing at INFO, and Ctrl-C
stops everything without errors or tracebacks from the worker's pool. The demo login is printed
after the services' banners."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.web import free_port

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def procfile_for_test(tmp_path: Path, port: int) -> Path:
    """Procfile.dev with this interpreter's virtualenv and a free port for runserver."""
    text = (ROOT / "Procfile.dev").read_text()
    assert "runserver 127.0.0.1:$PORT" in text  # `make run` sets PORT (8000 unless given)
    text = text.replace(".venv/bin/", f"{Path(sys.executable).parent}/").replace("127.0.0.1:$PORT", f"127.0.0.1:{port}")
    path = tmp_path / "Procfile"
    path.write_text(text)
    return path


def test_quiet_while_idle_and_ctrl_c_stops_the_worker_without_errors(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NURTURE_", "CELERY_", "EMAIL_", "DATABASE_", "LOG_"))}
    env.update({"NURTURE_VAR_DIR": str(var), "DJANGO_DEBUG": "1", "NURTURE_DAY_SECONDS": "10", "PYTHONPATH": str(ROOT)})
    setup = subprocess.run([sys.executable, "manage.py", "setup_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr[-3000:]

    honcho = Path(sys.executable).parent / "honcho"
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        # Like a terminal: honcho in the foreground process group, its processes in their own.
        proc = subprocess.Popen([str(honcho), "-d", str(ROOT), "-f", str(procfile_for_test(tmp_path, free_port())), "start"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while "ready." not in log_path.read_text(errors="replace") or "beat: Starting" not in log_path.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
            ready_at = len(log_path.read_text(errors="replace"))
            time.sleep(6)  # beat sends the planner every 2 s and the others as often: three idle runs of each
            # Procfile.dev's login process prints the demo login 8 s after the start: Ctrl-C only after it.
            while "Demo staff login" not in log_path.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
            idle = log_path.read_text(errors="replace")[ready_at:]
            os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    output = log_path.read_text(errors="replace")
    assert "SIGINT received" in output, output[-3000:]
    assert not re.search(r"INFO .*(Sending due task|received|succeeded|planned deliveries=0|purge expired data)", idle), idle
    # The demo staff login comes after the services' start-up banners, not above them.
    login = output.index("Demo staff login")
    assert login > output.index("beat: Starting") and login > output.index("ready."), output[-3000:]
    shutdown = output[output.index("SIGINT received"):]
    # (On a busy machine the worker may need more than honcho's 5 s and be killed: quietly, too.)
    for noise in ("ERROR", "Traceback", "KeyboardInterrupt", "exited with 'signal"):
        assert noise not in shutdown, shutdown
    assert re.search(r"worker\.1 stopped", shutdown), shutdown
