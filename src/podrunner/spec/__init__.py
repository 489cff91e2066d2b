"""What to run: the validated, immutable :class:`PodSpec` and its value types (pure data).

``values`` holds the value types (enums, Resources, SecretRef, EnvVar, Volume, Deadlines,
Toleration), ``affinity`` node affinity, ``containers`` init containers and sidecars,
``egress`` the egress policy, ``workspace`` the workspace, ``pod`` the PodSpec and its size
limits, ``_fields`` the shared converters.
"""

from __future__ import annotations

from podrunner.spec._fields import FrozenMap, SecretMap, SecretRef
from podrunner.spec.affinity import NodeAffinity, NodePreference, NodeRequirement
from podrunner.spec.containers import InitContainer, Sidecar
from podrunner.spec.egress import EgressPolicy, EgressPort, EgressRule
from podrunner.spec.pod import (
    MAX_ARG_BYTES,
    MAX_EXEC_BYTES,
    MAX_POD_CONTENT_BYTES,
    RESERVED_ANNOTATION_BYTES,
    RESERVED_ANNOTATION_KEYS,
    RESERVED_LABEL_KEYS,
    PodSpec,
)
from podrunner.spec.values import (
    CleanupPolicy,
    Deadlines,
    EnvVar,
    ImagePullPolicy,
    Resources,
    SecurityProfile,
    Toleration,
    Volume,
    VolumeKind,
)
from podrunner.spec.workspace import (
    DEFAULT_WORKSPACE_IMAGE,
    DEFAULT_WORKSPACE_PATH,
    DownloadSource,
    GitSource,
    Workspace,
)

__all__ = [
    "DEFAULT_WORKSPACE_IMAGE",
    "DEFAULT_WORKSPACE_PATH",
    "MAX_ARG_BYTES",
    "MAX_EXEC_BYTES",
    "MAX_POD_CONTENT_BYTES",
    "RESERVED_ANNOTATION_BYTES",
    "RESERVED_ANNOTATION_KEYS",
    "RESERVED_LABEL_KEYS",
    "CleanupPolicy",
    "Deadlines",
    "DownloadSource",
    "EgressPolicy",
    "EgressPort",
    "EgressRule",
    "EnvVar",
    "FrozenMap",
    "GitSource",
    "ImagePullPolicy",
    "InitContainer",
    "NodeAffinity",
    "NodePreference",
    "NodeRequirement",
    "PodSpec",
    "Resources",
    "SecretMap",
    "SecretRef",
    "SecurityProfile",
    "Sidecar",
    "Toleration",
    "Volume",
    "VolumeKind",
    "Workspace",
]
