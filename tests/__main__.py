"""The whole check suite, one command: ``python -m tests``.

Runs every check CI runs, in order of speed, and stops at the first failure so the
cause is the last thing printed. Extra arguments are passed to pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _step(title: str, *argv: str) -> None:
    print(f"==> {title}: {' '.join(argv)}", flush=True)
    result = subprocess.run(argv, cwd=ROOT, check=False)
    if result.returncode != 0:
        print(f"==> FAILED: {title} (exit {result.returncode})", flush=True)
        raise SystemExit(result.returncode)


def main() -> None:
    py = sys.executable
    _step("ruff lint", py, "-m", "ruff", "check", ".")
    _step("ruff format", py, "-m", "ruff", "format", "--check", ".")
    _step("import layering", str(Path(py).parent / "lint-imports"))
    _step("mypy strict", py, "-m", "mypy")
    _step("bandit", py, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "cleaner")
    _step("pytest", py, "-m", "pytest", *sys.argv[1:])
    print("==> all checks passed", flush=True)


if __name__ == "__main__":
    main()
