"""How a failed job's reason is put together from failure files and stderr."""

from __future__ import annotations

from dockyard.engine.hosts import _with_traceback, last_traceback

TOOLKIT_STDERR = [
    "Traceback (most recent call last):",
    '  File "/opt/ml/code/train.py", line 20, in <module>',
    "    main()",
    '  File "/opt/ml/code/train.py", line 12, in main',
    '    raise ValueError(f"learning rate {lr} is negative")',
    "ValueError: learning rate -1 is negative",
    "2026-11-22 04:00:00,000 sagemaker-training-toolkit ERROR    Reporting training FAILURE",
    "2026-11-22 04:00:00,000 sagemaker-training-toolkit ERROR    ExecuteUserScriptError:",
    "ExitCode 1",
    'ErrorMessage ""',
]
TOOLKIT_FAILURE = (
    'ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""\nCommand "/usr/bin/python3 train.py"'
)


def test_last_traceback_is_the_last_frame_and_the_exception() -> None:
    assert last_traceback(TOOLKIT_STDERR) == (
        "Traceback (last frame):\n"
        'File "/opt/ml/code/train.py", line 12, in main\n'
        'raise ValueError(f"learning rate {lr} is negative")\n'
        "ValueError: learning rate -1 is negative"
    )
    assert last_traceback(["plain error", "no traceback here"]) is None


def test_a_toolkit_failure_file_gains_the_traceback() -> None:
    reason = _with_traceback(TOOLKIT_FAILURE, last_traceback(TOOLKIT_STDERR))
    assert reason.startswith("ExecuteUserScriptError:\nExitCode 1")
    assert reason.endswith("ValueError: learning rate -1 is negative")
    assert 'File "/opt/ml/code/train.py", line 12, in main' in reason


def test_a_failure_file_that_already_names_the_exception_is_kept_as_is() -> None:
    text = "ValueError: learning rate -1 is negative\n(written by the program)"
    assert _with_traceback(text, last_traceback(TOOLKIT_STDERR)) == text


def test_the_reason_fits_1024_characters_and_keeps_the_traceback() -> None:
    reason = _with_traceback("X" * 5000, last_traceback(TOOLKIT_STDERR))
    assert len(reason) <= 1024
    assert reason.endswith("ValueError: learning rate -1 is negative")
