"""A hypothesis state machine checks the store against a simple model."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from podrunner.backends.fake import FakeCluster
from podrunner.errors import AlreadyExists, Conflict, NotFound

NAMES = st.sampled_from(["a", "b", "c", "d"])


class FakeClusterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = FakeCluster(history=10_000)
        self.backend = self.cluster.backend
        self.model: dict[str, dict[str, str]] = {}  # ConfigMap name -> data
        self.versions: dict[str, str] = {}
        self.last_rv = 0
        start = self.backend.list("ConfigMap", "default").resource_version
        self.watch_rv = start
        self.seen: dict[str, dict[str, str]] = {}
        self.pods = 0

    def _bump(self, obj: dict[str, Any]) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        assert rv > self.last_rv
        self.last_rv = rv

    @rule(name=NAMES, value=st.text(max_size=3))
    def create(self, name: str, value: str) -> None:
        try:
            obj = self.backend.create(
                {"kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}
            )
        except AlreadyExists:
            assert name in self.model
            return
        assert name not in self.model
        self._bump(obj)
        self.model[name] = {"v": value}
        self.versions[name] = obj["metadata"]["resourceVersion"]

    @rule(name=NAMES, value=st.text(max_size=3), stale=st.booleans())
    def update(self, name: str, value: str, stale: bool) -> None:
        rv = self.versions.get(name, "1")
        if stale and name in self.model:
            rv = str(int(rv) - 1)
        manifest = {
            "kind": "ConfigMap",
            "metadata": {"name": name, "resourceVersion": rv},
            "data": {"v": value},
        }
        try:
            obj = self.backend.replace(manifest)
        except NotFound:
            assert name not in self.model
            return
        except Conflict:
            assert stale
            return
        assert not stale
        if self.model[name] != {"v": value}:
            self._bump(obj)
        self.model[name] = {"v": value}
        self.versions[name] = obj["metadata"]["resourceVersion"]

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        try:
            self.backend.delete("ConfigMap", "default", name)
        except NotFound:
            assert name not in self.model
            return
        del self.model[name]
        self.versions.pop(name, None)
        self.last_rv += 1  # the deletion took a version too

    @precondition(lambda self: self.pods < 5)
    @rule()
    def create_pod(self) -> None:
        self.backend.create(
            {
                "kind": "Pod",
                "metadata": {"generateName": "p-"},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]},
            }
        )
        self.pods += 1
        self.last_rv = int(self.backend.list("Pod", "default").resource_version)

    @rule(seconds=st.floats(min_value=0, max_value=5))
    def advance(self, seconds: float) -> None:
        self.cluster.advance(seconds)
        self.last_rv = int(self.backend.list("Pod", "default").resource_version)

    @rule()
    def drain_watch(self) -> None:
        """Watches see every change once and in order, and replaying them yields the store."""
        rvs = []
        for event in self.backend.watch(
            "ConfigMap", "default", resource_version=self.watch_rv, timeout_seconds=0
        ):
            meta = event.object["metadata"]
            rvs.append(int(meta["resourceVersion"]))
            if event.type == "DELETED":
                self.seen.pop(meta["name"], None)
            else:
                self.seen[meta["name"]] = event.object.get("data") or {}
        assert rvs == sorted(set(rvs))
        if rvs:
            self.watch_rv = str(rvs[-1])
        assert self.seen == self.model

    @invariant()
    def store_matches_model(self) -> None:
        items = self.backend.list("ConfigMap", "default").items
        # kube-root-ca.crt is published in every namespace, as on a real cluster.
        found = {i["metadata"]["name"]: i.get("data") or {} for i in items}
        assert "ca.crt" in found.pop("kube-root-ca.crt")
        assert found == self.model


TestFakeCluster = FakeClusterMachine.TestCase
TestFakeCluster.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
