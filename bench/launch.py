"""Run one command and write its exit code, wall time, peak RSS and CPU seconds as JSON.

Usage: `python bench/launch.py OUT.json COMMAND [ARGS...]` (the command's stdout and stderr
are this process's own).

Why a separate launcher: Linux carries a parent's high-water RSS into a child spawned by
fork or vfork (the child's ``ru_maxrss`` starts at the parent's peak), so a benchmark
process that holds a lot of memory would inflate every figure it measures directly. This
launcher imports nothing heavy (about 10 MB resident), so the ``ru_maxrss`` that
``os.wait4`` returns for its child is the child's own peak.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    out_path, program, *args = sys.argv[1:]
    started = time.perf_counter()
    pid = os.posix_spawnp(program, [program, *args], os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall_s = time.perf_counter() - started
    result = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": wall_s,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
    }
    with open(out_path, "w", encoding="utf-8") as out:  # noqa: PTH123  # pathlib costs an import
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
