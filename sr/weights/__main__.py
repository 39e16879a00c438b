"""``python -m sr.weights``: the weights command (:mod:`sr.weights.cli`)."""

from sr.weights.cli import main

raise SystemExit(main())
