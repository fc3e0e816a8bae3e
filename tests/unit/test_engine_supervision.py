import signal

import pytest

from model_api.runner.engine_process import EngineRestarting, exit_reason
from model_api.runner.interface import ModelUnavailable

pytestmark = pytest.mark.unit


def test_the_exit_reason_names_the_signal_or_the_code():
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert exit_reason(1) == "exited with code 1"
    assert exit_reason(None) == "did not exit"


def test_a_restarting_engine_is_a_model_unavailable_with_its_retry_after():
    error = EngineRestarting("the model process killed by SIGKILL; a new one is starting", retry_after=7)
    assert isinstance(error, ModelUnavailable) and error.retry_after == 7
