"""The harness that runs the real parts as processes, for the tests and the benchmarks alike: start,
wait, stop, and break them on purpose.

:mod:`harness.processes` starts, waits for and stops processes; :mod:`harness.pipeline` runs the
service, the relay and the job in one working folder; :mod:`harness.scenarios` breaks them (with
:mod:`harness.guards` and :mod:`harness.long_posts`) and counts every tweet. ``tests/faults``
asserts on what the scenarios count, and ``python -m benchmarks.faults`` prints the same figures.
Nothing here imports the tests or the benchmarks, and no product package imports this one.
"""
