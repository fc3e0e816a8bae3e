"""What tests need to run the real parts as processes: start, wait, stop, and break them on purpose.

:mod:`tests.support.processes` starts, waits for and stops processes; :mod:`tests.support.pipeline`
runs the service, the relay and the job in one working folder; :mod:`tests.support.scenarios` breaks
them and counts every tweet. The benchmarks import these modules too (``python -m benchmarks.faults``
prints the figures the fault tests assert on); nothing here imports the benchmarks.
"""
