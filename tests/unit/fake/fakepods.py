"""Manifest builders shared by the fake cluster tests."""

from __future__ import annotations

from typing import Any


def pod(name: str = "p", *, image: str = "busybox:1.36", **spec: Any) -> dict[str, Any]:
    """Build a minimal pod manifest."""
    meta: dict[str, Any] = {"name": name} if name else {"generateName": "p-"}
    for key in ("labels", "annotations", "namespace"):
        if key in spec:
            meta[key] = spec.pop(key)
    body: dict[str, Any] = {"containers": [{"name": "c", "image": image, "command": ["true"]}]}
    body["restartPolicy"] = spec.pop("restartPolicy", "Never")
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}
