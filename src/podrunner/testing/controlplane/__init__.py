"""The local control plane's build tool, shipped in the wheel with its Go wrapper modules.

``python -m podrunner.testing.controlplane build`` builds kube-apiserver, kube-controller-manager,
kube-scheduler, etcd and kwok (pinned in ``versions.json``) from the Go module proxy into
``~/.cache/podrunner/controlplane/<versions>/bin``, where
:class:`~podrunner.testing.kwok.KwokCluster` and ``--podrunner-backend=kwok`` look for them.
``python -m podrunner.testing.controlplane bin-dir`` prints that directory. Needs Go >= 1.26.
"""

from __future__ import annotations

__all__: list[str] = []
