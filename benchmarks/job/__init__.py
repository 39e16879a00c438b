"""The parts of one benchmark job (``benchmarks.runner.run_job`` composes them):

* ``context``: the job's settings, its data set and method opened, its cache keys and its result rows;
* ``frames``: the frame pipeline (load ahead, SR, PNG write behind, in sample order);
* ``quality``: the quality metrics of every frame, cached per frame, and their rows;
* ``tasks``: the downstream tasks on the job's SR frames, cached per split, with their bootstrap replicates;
* ``files``: the files a job leaves in the run folder besides the cache (output index, identity, per-image values).

The expensive objects they use (SR methods, metrics, task networks) come from ``benchmarks.resources.Resources``,
one per run, passed in; the wall time by stage goes to its ``Stages``.
"""
