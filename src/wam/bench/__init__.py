"""Benchmarks: pre-registered suites (``suite``), a resumable grid runner (``runner``), statistics (``aggregate``),
verdicts on the suites' claims (``claims``) and the results page (``report``). The command line is ``wam bench`` (``wam.cli.bench``)."""

from wam.bench.suite import ClaimSpec, Suite, SuiteError, TaskSpec, load_suite, parse_suite

__all__ = ["ClaimSpec", "Suite", "SuiteError", "TaskSpec", "load_suite", "parse_suite"]
