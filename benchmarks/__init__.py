"""The benchmark runner: suites, caching, executors, regression checks, performance scripts."""
