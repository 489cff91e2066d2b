"""kwok's configuration, read from the package data files in ``stages/``.

The Stages, the exec and logs settings, and the objects created before kwok starts (the Logs
CRD, the node, the Unschedulable admission policy).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "NO_LOGS_OBJECT_FILE",
    "NO_LOGS_OBJECT_LINE",
    "SEED_OBJECTS",
    "kwok_config",
    "node_manifest",
    "node_stages_yaml",
    "pod_stages",
]


def _data(name: str) -> str:
    stages = resources.files("podrunner.testing.controlplane") / "stages"
    return (stages / name).read_text("utf-8")


def _yaml_documents(name: str) -> list[dict[str, Any]]:
    import yaml  # lazily: only when a cluster starts

    return [doc for doc in yaml.safe_load_all(_data(name)) if doc]


def pod_stages() -> list[dict[str, Any]]:
    """Return the kwok Pod Stages that implement the simulation annotations (``stages/pod.yaml``).

    The stages are mutually exclusive (kwok picks one matching stage per object state):
    create (Pending) -> running -> terminate -> [restart -> running -> ...], the image-pull
    failure branch, and delete.
    """
    return _yaml_documents("pod.yaml")


def node_stages_yaml() -> str:
    """Return kwok's own node stages (``stages/node.yaml``), which kwok drops once any is set."""
    return _data("node.yaml")


#: API paths and data files of the objects created before kwok starts.
SEED_OBJECTS: tuple[tuple[str, str], ...] = (
    ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "logs-crd.yaml"),
    (
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies",
        "unschedulable-policy.yaml",
    ),
    (
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings",
        "unschedulable-binding.yaml",
    ),
)


def seed_object(name: str) -> dict[str, Any]:
    """Return one of the :data:`SEED_OBJECTS` manifests."""
    (doc,) = _yaml_documents(name)
    return doc


#: The previous-log file kwok serves for a pod it has no Logs object for (next to the default
#: empty log): its one line tells the log agent that kwok has not learned the pod's object yet.
NO_LOGS_OBJECT_FILE = "no-logs-object.log"
NO_LOGS_OBJECT_LINE = "podrunner: kwok has no Logs object for this pod"


def kwok_config(exec_dir: Path, default_log: Path) -> list[dict[str, Any]]:
    """The documents of kwok's ``--config``: the pod stages, local exec and default logs.

    A pod kwok has no Logs object for is served ``default_log`` (empty) as its log, and the
    :data:`NO_LOGS_OBJECT_FILE` beside it as its previous log.
    """
    docs = pod_stages()
    docs.append(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterExec",
            "metadata": {"name": "podrunner-local-exec"},
            "spec": {
                "execs": [
                    {
                        "local": {
                            "workDir": str(exec_dir),
                            "envs": [{"name": "PODRUNNER_KWOK_EXEC", "value": "1"}],
                        }
                    }
                ]
            },
        }
    )
    docs.append(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "podrunner-empty-logs"},
            "spec": {
                "logs": [
                    {
                        "logsFile": str(default_log),
                        "previousLogsFile": str(default_log.with_name(NO_LOGS_OBJECT_FILE)),
                    }
                ]
            },
        }
    )
    return docs


def node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
    }
