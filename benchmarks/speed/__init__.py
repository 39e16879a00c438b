"""Speed and precision studies (``python -m benchmarks.speed.TOOL``): perf, gpu_check, memory, train_cost,
precision, official, and the timed-call loop they share (timing). The runner never imports this package; the
tools import the runner (``perf --stages`` runs the suite through ``benchmarks.run``). docs/performance.md lists
them."""
