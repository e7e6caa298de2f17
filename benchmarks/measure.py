"""What `make bench` reads from the machine and from /proc: the machine's description, the
services' versions, a worker's peak RSS and CPU (its main process and its pool children), and
the busiest one-second window of request times. Shared by run_all and bench_send."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram_gib": round(ram_gib, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def service_versions(redis_url: str) -> dict:
    from django.db import connection
    import redis

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"postgresql": pg, "redis": redis.Redis.from_url(redis_url).info("server")["redis_version"]}


def busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    busiest, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    return busiest



def _with_children(pid: int) -> list[int]:
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a worker: its main process and its pool children, summed."""
    total = 0
    for p in _with_children(pid):
        status = Path(f"/proc/{p}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds_of(pid: int) -> float:
    """CPU (user + system) of a worker: its main process and its pool children, summed."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _with_children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks
