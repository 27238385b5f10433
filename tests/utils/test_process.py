"""The one child-process helper: ``python -m spinexr.cli.<command>``, errors with the log's tail."""
import pytest

from spinexr.utils.process import CommandFailedError, run_command


def test_runs_a_package_entry_point_from_any_folder(tmp_path):
    log = tmp_path / 'logs' / 'train.log'
    seconds = run_command('train', ['--help'], log_file=str(log), cwd=str(tmp_path))
    assert seconds > 0
    text = log.read_text()
    assert '-m spinexr.cli.train --help' in text and '--work-dir' in text


def test_failure_names_the_command_status_and_log(tmp_path):
    log = tmp_path / 'test.log'
    with pytest.raises(CommandFailedError, match=r'spinexr\.cli\.test .*status 2.*test\.log') as err:
        run_command('test', ['--no-such-flag'], log_file=str(log))
    assert err.value.returncode == 2
    assert 'required: config, checkpoint' in str(err.value)  # the log's tail is quoted
