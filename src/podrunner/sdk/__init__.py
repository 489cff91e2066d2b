"""What application code touches: specs, manifests, the runner."""
