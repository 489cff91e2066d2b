"""Testing helpers: the fake cluster, pytest fixtures, local control planes, assertions."""
