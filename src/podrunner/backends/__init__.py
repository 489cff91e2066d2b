"""Cluster backends: the protocol, the in-memory fake and the real Kubernetes client."""
