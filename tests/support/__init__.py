"""Helpers only the tests use (:mod:`tests.support.front`: the service's front in-process and on
loopback). What the tests share with the benchmarks, running the real parts as processes, is the
top-level :mod:`harness` package."""
