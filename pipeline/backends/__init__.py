"""Optional model backends, each in its own module (loaded by `pipeline.registry` by name)."""
