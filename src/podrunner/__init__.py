"""podrunner: run agent CLIs and any command in ephemeral Kubernetes pods.

``import podrunner`` is light on purpose: every public name loads on first use, so neither
``kubernetes``, ``click``, ``rich``, ``yaml`` nor the attrs spec classes load until needed (the
pytest plugin imports this package in every test session of every project that installs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podrunner import errors
    from podrunner.backends.base import (
        AsyncBackend,
        Backend,
    )
    from podrunner.backends.kubernetes import (
        ClusterConfig,
    )
    from podrunner.errors import (
        AlreadyExists,
        BackendError,
        BackendUnavailable,
        BadRequest,
        CollectFailed,
        ConfigError,
        Conflict,
        ContainerConfigError,
        Forbidden,
        Gone,
        ImagePullError,
        InitContainerFailed,
        Invalid,
        NotFound,
        PodFailed,
        PodLost,
        PodrunnerError,
        RunCancelled,
        RunError,
        RunTimeout,
        ServerError,
        SpecError,
        StartTimeout,
        StatusCause,
        TooManyRequests,
        Unauthorized,
        Unschedulable,
        error_for_status,
    )
    from podrunner.manifest import (
        Manifests,
        build_credentials_prefix,
        build_manifests,
        build_pod_manifest,
        generate_pod_name,
        new_run_id,
        sanitize_label_value,
    )
    from podrunner.run import (
        Phase,
        PodRunner,
        PodState,
        ReapReport,
        Reason,
        RetryingBackend,
        RetryPolicy,
        RunHandle,
        RunResult,
    )
    from podrunner.run.aio_handle import AsyncRunHandle
    from podrunner.run.aio_pool import AsyncPodPool
    from podrunner.run.aio_retry import AsyncRetryingBackend
    from podrunner.run.aio_runner import AsyncPodRunner
    from podrunner.run.collect import Collect, CollectedFiles
    from podrunner.run.pool import PodPool
    from podrunner.run.pool_run import ClaimedPod
    from podrunner.signals import (
        Terminated,
        stop_on_signals,
    )
    from podrunner.spec import (
        CleanupPolicy,
        Deadlines,
        DownloadSource,
        EgressPolicy,
        EgressPort,
        EgressRule,
        EnvVar,
        GitSource,
        ImagePullPolicy,
        InitContainer,
        NodeAffinity,
        NodePreference,
        NodeRequirement,
        PodSpec,
        Resources,
        SecretRef,
        SecurityProfile,
        Sidecar,
        Toleration,
        Volume,
        Workspace,
    )

__version__ = "0.1.0"

# Every name loads on first use: the pytest plugin imports this package in every test session of
# every project that installs podrunner, and must cost nothing there (the spec's attrs classes
# alone take ~15 ms). A spec-only user never pays for the runner either.
_LAZY = {
    "errors": "podrunner.errors",
    "AlreadyExists": "podrunner.errors",
    "BackendError": "podrunner.errors",
    "BackendUnavailable": "podrunner.errors",
    "BadRequest": "podrunner.errors",
    "CollectFailed": "podrunner.errors",
    "Collect": "podrunner.run.collect",
    "CollectedFiles": "podrunner.run.collect",
    "ConfigError": "podrunner.errors",
    "Conflict": "podrunner.errors",
    "ContainerConfigError": "podrunner.errors",
    "Forbidden": "podrunner.errors",
    "Gone": "podrunner.errors",
    "ImagePullError": "podrunner.errors",
    "InitContainerFailed": "podrunner.errors",
    "Invalid": "podrunner.errors",
    "NotFound": "podrunner.errors",
    "PodFailed": "podrunner.errors",
    "PodLost": "podrunner.errors",
    "PodrunnerError": "podrunner.errors",
    "RunCancelled": "podrunner.errors",
    "RunError": "podrunner.errors",
    "RunTimeout": "podrunner.errors",
    "ServerError": "podrunner.errors",
    "SpecError": "podrunner.errors",
    "StartTimeout": "podrunner.errors",
    "StatusCause": "podrunner.errors",
    "TooManyRequests": "podrunner.errors",
    "Unauthorized": "podrunner.errors",
    "Unschedulable": "podrunner.errors",
    "error_for_status": "podrunner.errors",
    "CleanupPolicy": "podrunner.spec",
    "Deadlines": "podrunner.spec",
    "EgressPolicy": "podrunner.spec",
    "EgressPort": "podrunner.spec",
    "EgressRule": "podrunner.spec",
    "EnvVar": "podrunner.spec",
    "ImagePullPolicy": "podrunner.spec",
    "InitContainer": "podrunner.spec",
    "NodeAffinity": "podrunner.spec",
    "NodePreference": "podrunner.spec",
    "NodeRequirement": "podrunner.spec",
    "PodSpec": "podrunner.spec",
    "Resources": "podrunner.spec",
    "SecretRef": "podrunner.spec",
    "SecurityProfile": "podrunner.spec",
    "Sidecar": "podrunner.spec",
    "Toleration": "podrunner.spec",
    "Volume": "podrunner.spec",
    "Workspace": "podrunner.spec",
    "GitSource": "podrunner.spec",
    "DownloadSource": "podrunner.spec",
    "Manifests": "podrunner.manifest",
    "build_credentials_prefix": "podrunner.manifest",
    "build_manifests": "podrunner.manifest",
    "build_pod_manifest": "podrunner.manifest",
    "generate_pod_name": "podrunner.manifest",
    "new_run_id": "podrunner.manifest",
    "sanitize_label_value": "podrunner.manifest",
    "ClusterConfig": "podrunner.backends.kubernetes",
    "Backend": "podrunner.backends.base",
    "Phase": "podrunner.run",
    "PodRunner": "podrunner.run",
    "AsyncPodRunner": "podrunner.run.aio_runner",
    "AsyncPodPool": "podrunner.run.aio_pool",
    "PodPool": "podrunner.run.pool",
    "ClaimedPod": "podrunner.run.pool_run",
    "AsyncRunHandle": "podrunner.run.aio_handle",
    "AsyncRetryingBackend": "podrunner.run.aio_retry",
    "AsyncBackend": "podrunner.backends.base",
    "PodState": "podrunner.run",
    "ReapReport": "podrunner.run",
    "Reason": "podrunner.run",
    "RetryPolicy": "podrunner.run",
    "RetryingBackend": "podrunner.run",
    "RunHandle": "podrunner.run",
    "RunResult": "podrunner.run",
    "Terminated": "podrunner.signals",
    "stop_on_signals": "podrunner.signals",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'podrunner' has no attribute {name!r}")
    import importlib

    imported = importlib.import_module(module)
    value = imported if name == "errors" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AlreadyExists",
    "AsyncBackend",
    "AsyncPodPool",
    "AsyncPodRunner",
    "AsyncRetryingBackend",
    "AsyncRunHandle",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "ClaimedPod",
    "CleanupPolicy",
    "ClusterConfig",
    "Collect",
    "CollectFailed",
    "CollectedFiles",
    "ConfigError",
    "Conflict",
    "ContainerConfigError",
    "Deadlines",
    "DownloadSource",
    "EgressPolicy",
    "EgressPort",
    "EgressRule",
    "EnvVar",
    "Forbidden",
    "GitSource",
    "Gone",
    "ImagePullError",
    "ImagePullPolicy",
    "InitContainer",
    "InitContainerFailed",
    "Invalid",
    "Manifests",
    "NodeAffinity",
    "NodePreference",
    "NodeRequirement",
    "NotFound",
    "Phase",
    "PodFailed",
    "PodLost",
    "PodPool",
    "PodRunner",
    "PodSpec",
    "PodState",
    "PodrunnerError",
    "ReapReport",
    "Reason",
    "Resources",
    "RetryPolicy",
    "RetryingBackend",
    "RunCancelled",
    "RunError",
    "RunHandle",
    "RunResult",
    "RunTimeout",
    "SecretRef",
    "SecurityProfile",
    "ServerError",
    "Sidecar",
    "SpecError",
    "StartTimeout",
    "StatusCause",
    "Terminated",
    "Toleration",
    "TooManyRequests",
    "Unauthorized",
    "Unschedulable",
    "Volume",
    "Workspace",
    "__version__",
    "build_credentials_prefix",
    "build_manifests",
    "build_pod_manifest",
    "error_for_status",
    "errors",
    "generate_pod_name",
    "new_run_id",
    "sanitize_label_value",
    "stop_on_signals",
]
