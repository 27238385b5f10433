"""The one way spinexr starts a child process: ``python -m spinexr.cli.<command>``.

Experiments that need process isolation (mmengine keeps global state: registries' default scope,
the message hub, visualizer instances) run each training or test in a child Python started on a
package entry point, never on a path into a checkout, so they work from any folder after
``pip install .``.
"""
import os
import subprocess
import sys
import time
from typing import Mapping, Optional, Sequence

#: Lines of the child's log shown when it fails.
_TAIL_LINES = 40


class CommandFailedError(RuntimeError):
    """A child ``python -m spinexr.cli...`` exited with a non-zero status.

    Attributes:
        returncode (int): The child's exit status.
        log_file (str | None): The file holding its whole output.
    """

    def __init__(self, message: str, returncode: int, log_file: Optional[str]) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_file = log_file


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def run_command(command: str, args: Sequence[str], log_file: Optional[str] = None,
                cwd: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> float:
    """Run ``python -m spinexr.cli.<command> ARGS`` in a child process and wait for it.

    Args:
        command (str): Module name under :mod:`spinexr.cli` (e.g. ``'train'``, ``'test'``), or a
            full dotted module path starting with ``spinexr.``.
        args (Sequence[str]): Command-line arguments of the command.
        log_file (str, optional): File that receives the child's stdout and stderr (appended).
            Without one the child writes to this process's streams.
        cwd (str, optional): Working folder of the child (default: this process's).
        env (Mapping[str, str], optional): Extra environment variables for the child.

    Returns:
        float: Wall time of the child in seconds.

    Raises:
        CommandFailedError: When the child exits with a non-zero status; the message names the
            command, the status and the log file, and quotes the log's last lines.
    """
    module = command if command.startswith('spinexr.') else f'spinexr.cli.{command}'
    cmd = [sys.executable, '-m', module, *map(str, args)]
    child_env = dict(os.environ)
    child_env.update(env or {})
    start = time.perf_counter()
    if log_file is None:
        proc = subprocess.run(cmd, cwd=cwd, env=child_env)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        with open(log_file, 'a', encoding='utf-8') as log:
            log.write('$ ' + ' '.join(cmd) + '\n')
            log.flush()
            proc = subprocess.run(cmd, cwd=cwd, env=child_env, stdout=log,
                                  stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        where = f'; its output is in {log_file}:\n{_tail(log_file)}' if log_file else ''
        raise CommandFailedError(
            f'{module} {" ".join(map(str, args))} exited with status {proc.returncode}{where}',
            proc.returncode, log_file)
    return seconds
