"""Spec to Kubernetes JSON (pure functions, no I/O), and the names and labels runs carry."""

from __future__ import annotations

from podrunner.manifest.build import (
    COMPONENT_LABEL,
    DEFAULT_NON_ROOT_ID,
    FILES_VOLUME_NAME,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MANAGED_SELECTOR,
    RUN_ID_LABEL,
    SECRET_VOLUME_NAME,
    Manifests,
    build_credentials_prefix,
    build_manifests,
    build_pod_manifest,
    egress_name_for,
    files_name_for,
    owner_reference,
    secret_name_for,
)
from podrunner.manifest.naming import (
    generate_pod_name,
    new_run_id,
    sanitize_label_value,
)

__all__ = [
    "COMPONENT_LABEL",
    "DEFAULT_NON_ROOT_ID",
    "FILES_VOLUME_NAME",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MANAGED_SELECTOR",
    "RUN_ID_LABEL",
    "SECRET_VOLUME_NAME",
    "Manifests",
    "build_credentials_prefix",
    "build_manifests",
    "build_pod_manifest",
    "egress_name_for",
    "files_name_for",
    "generate_pod_name",
    "new_run_id",
    "owner_reference",
    "sanitize_label_value",
    "secret_name_for",
]
