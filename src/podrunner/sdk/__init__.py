"""What application code touches: specs, manifests, cluster configuration, names."""

from __future__ import annotations

from podrunner.sdk.manifest import (
    Manifests,
    build_credentials_prefix,
    build_manifests,
    build_pod_manifest,
)
from podrunner.sdk.naming import generate_pod_name, new_run_id, sanitize_label_value
from podrunner.sdk.spec import (
    CleanupPolicy,
    Deadlines,
    EnvVar,
    ImagePullPolicy,
    PodSpec,
    Resources,
    SecretRef,
    SecurityProfile,
    Toleration,
    Volume,
)

__all__ = [
    "CleanupPolicy",
    "Deadlines",
    "EnvVar",
    "ImagePullPolicy",
    "Manifests",
    "PodSpec",
    "Resources",
    "SecretRef",
    "SecurityProfile",
    "Toleration",
    "Volume",
    "build_credentials_prefix",
    "build_manifests",
    "build_pod_manifest",
    "generate_pod_name",
    "new_run_id",
    "sanitize_label_value",
]
