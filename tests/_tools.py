"""Checkout-only test helpers: the repository root and running its ``tools/*.py`` scripts.

The package never looks for a checkout; the test suite lives in one, so end-to-end tests of the
``tools/`` doors start them by path from here (``from _tools import REPO, run_tool``; the
suite's ``conftest.py`` puts this folder on ``sys.path``).
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

#: The checkout holding this test suite.
REPO = Path(__file__).resolve().parents[1]


def run_tool(args: List[str], cwd: Optional[Path] = None, timeout: int = 900,
             env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` from the repository root and fail with its output if it fails.

    Args:
        args (list[str]): Script path (relative to the root, e.g. ``tools/train.py``) and its
            arguments.
        cwd (Path, optional): Working folder (default: the repository root).
        timeout (int): Seconds before the child is killed.
        env (dict, optional): Extra environment variables.

    Returns:
        subprocess.CompletedProcess: The finished child (captured text output).

    Raises:
        AssertionError: When the child exits with a non-zero status (with its output's tail).
    """
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited {proc.returncode}\n'
                             f'--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}')
    return proc
