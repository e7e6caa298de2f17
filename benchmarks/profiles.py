"""py-spy profiles of a worker's pool process (only with `--profile`), in a tools venv of their
own, and their summary by kind of work."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PY_SPY_VERSION = "0.4.3"


def py_spy(args) -> Path:
    venv = Path(args.venv).parent / "tools-venv"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"py-spy=={PY_SPY_VERSION}"], check=True)
    return exe


def start_profile(args, pid: int, out: Path) -> subprocess.Popen | None:
    """py-spy sampling the worker's pool process (where tasks run), raw collapsed stacks, only
    samples of the thread holding the GIL (`--gil`): where the process's CPU goes, across the task
    thread and the send threads. The sending is CPU-bound now, so that is what bounds it."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    target = int(children.read_text().split()[0]) if children.exists() and children.read_text().split() else pid
    return subprocess.Popen([str(py_spy(args)), "record", "--pid", str(target), "--format", "raw", "--rate", "200",
                             "--output", str(out), "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)



PROVIDER_CALL = ("provider call (anymail, requests, HTTP)", ("anymail/", "requests/", "urllib3/", "http/client"))
KINDS_OF_WORK = (  # (kind, markers in a frame's file path), checked from the innermost frame out
    ("database (psycopg)", ("psycopg/",)),
    ("Redis (rate limit, broker)", ("redis/", "limits/", "kombu/")),
    ("building the email", ("nurture/emails/", "django/core/mail/", "css_inline", "django/template/")),
    ("Django ORM (building queries)", ("django/db/",)),
    ("Celery (task and result handling)", ("celery/", "billiard/")),
)


def _kind_of_work(stack: str) -> str:
    """The provider call wins wherever it is on the stack: everything anymail does (it parses
    addresses with Python's email package, encodes JSON, reads the proxy environment through
    requests) is the call's cost. Otherwise the innermost frame that says which."""
    frames = stack.split(";")
    if any(marker in frame for frame in frames for marker in PROVIDER_CALL[1]):
        return PROVIDER_CALL[0]
    for frame in reversed(frames):
        for kind, markers in KINDS_OF_WORK:
            if any(marker in frame for marker in markers):
                return kind
    return "other (task code, Python)"



def summarise_profile(raw: Path, top: int = 20) -> str:
    """Share of samples per function: where it was running (self) and on the stack (total)."""
    import collections

    self_counts, total_counts, categories, samples = collections.Counter(), collections.Counter(), collections.Counter(), 0
    if not raw.exists():
        return "(no profile written)"
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + (" (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")" if " (" in f else "") for f in stack.split(";")]
        samples += n
        self_counts[frames[-1]] += n
        categories[_kind_of_work(stack)] += n
        for frame in set(frames):
            total_counts[frame] += n
    if not samples:
        return "(no samples)"
    lines = [f"{samples} samples", "", "by kind of work (the innermost frame that says which):"]
    lines += [f"  {100 * n / samples:5.1f}%  {kind}" for kind, n in categories.most_common()]
    lines += ["", "self (where it was running):"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in self_counts.most_common(top)]
    lines += ["", "total (on the stack), the engine's own functions:"]
    own = [(f, n) for f, n in total_counts.most_common() if any(k in f for k in (
        "pipeline.py", "calls.py", "batch_calls.py", "handover.py", "ledger.py", "recheck.py", "throttle.py", "tasks.py", "merge.py", "messages.py",
        "cache.py", "links.py", "providers.py", "tokens.py"))]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own[:top]]
    return "\n".join(lines)
