"""CPU seconds of the machine's processes from /proc, for benchmarks that split a run's CPU by who spent it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    parent: int
    group: int
    name: str
    seconds: float  # user + system


def processes() -> dict[int, ProcessCpu]:
    """Every live process's CPU so far (processes that end between two reads drop out of the difference)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, ProcessCpu] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        found[int(entry.name)] = ProcessCpu(pid=int(entry.name), parent=int(fields[1]), group=int(fields[2]),
                                            name=name, seconds=(int(fields[11]) + int(fields[12])) / tick)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of the live processes among `pids` (e.g. NLU encoder workers)."""
    table = processes()
    return sum(table[pid].seconds for pid in pids if pid in table)


def descendants(table: dict[int, ProcessCpu], root: int) -> set[int]:
    """The processes below `root` (not `root` itself)."""
    mine: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, row in table.items() if row.parent in frontier} - mine
        mine |= frontier
    return mine


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), to see what else ran meanwhile."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
