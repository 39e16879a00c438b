"""Tables (pandas) and figures (matplotlib) made from a results.csv alone."""
