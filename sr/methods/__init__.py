"""SR method implementations; each is registered by a YAML in configs/methods/."""
