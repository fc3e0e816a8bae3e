"""The compiled engine is built at a lower CPU priority than serving, on Linux per thread."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from model_api.model.engine_setup import BACKGROUND_NICENESS, background_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness per thread is Linux's")


def niceness(thread_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread_id)


def test_only_the_calling_thread_and_the_threads_it_starts_run_nicer():
    before = niceness(threading.get_native_id())
    seen: dict[str, int] = {}

    def started_by_the_compile_thread() -> None:
        seen["child"] = niceness(threading.get_native_id())

    def compile_thread() -> None:
        background_priority()
        seen["compile"] = niceness(threading.get_native_id())
        child = threading.Thread(target=started_by_the_compile_thread)
        child.start()
        child.join()

    thread = threading.Thread(target=compile_thread)
    thread.start()
    thread.join()
    nicer = max(before, BACKGROUND_NICENESS)
    assert seen == {"compile": nicer, "child": nicer}
    assert niceness(threading.get_native_id()) == before  # the serving threads keep theirs
