"""The fake's speed tricks change nothing a caller can see.

Memoised spec preparation and compiled spec copies: every handout equals the stored object
and is its own copy, and a memoised spec answers exactly as a fresh one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podrunner.backends.fake import FakeCluster
from podrunner.errors import BadRequest, Invalid


def _pod(**container: Any) -> dict[str, Any]:
    main = {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}
    main.update(container)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "p-"},
        "spec": {"restartPolicy": "Never", "containers": [main]},
    }


def _run_to_end(cluster: FakeCluster, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    backend = cluster.backend
    created = backend.create(manifest)
    seen = [created]
    for event in backend.watch(
        "Pod",
        "default",
        field_selector=f"metadata.name={created['metadata']['name']}",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=60,
    ):
        seen.append(event.object)
        if event.object["status"]["phase"] in ("Succeeded", "Failed"):
            break
    return seen


def test_handouts_of_pods_made_from_one_spec_are_independent_and_exact() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(after=1.0)
    manifest = _pod(env=[{"name": "X", "value": "1.5"}])
    first = _run_to_end(cluster, manifest)
    second = _run_to_end(cluster, manifest)
    for seen in (first, second):
        name = seen[0]["metadata"]["name"]
        versions = cluster.history("Pod", "default", name)
        by_version = {v["metadata"]["resourceVersion"]: v for v in versions}
        for obj in seen:
            assert obj == by_version[obj["metadata"]["resourceVersion"]]
        token = seen[-1]["spec"]["volumes"][-1]["name"]
        assert token.startswith("kube-api-access-")
        assert seen[-1]["spec"]["containers"][0]["volumeMounts"][0]["name"] == token
        assert seen[-1]["spec"]["nodeName"]
    assert first[-1]["spec"]["volumes"][-1]["name"] != second[-1]["spec"]["volumes"][-1]["name"]
    # Mutating every handout, deep inside the injected volume too, changes nothing stored.
    name = second[0]["metadata"]["name"]
    stored = copy.deepcopy(cluster.backend.get("Pod", "default", name))
    for obj in second + first:
        obj["spec"]["volumes"][-1]["projected"]["sources"][0]["serviceAccountToken"]["path"] = "x"
        obj["spec"]["containers"][0]["env"].append({"name": "Y"})
        obj["spec"]["nodeName"] = "elsewhere"
    assert cluster.backend.get("Pod", "default", name) == stored
    listed = cluster.backend.list("Pod", "default").items
    assert all(p["spec"]["nodeName"] != "elsewhere" for p in listed)
    again = _run_to_end(cluster, manifest)
    sources = again[-1]["spec"]["volumes"][-1]["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"


def test_a_spec_holding_the_token_name_is_kept_as_given() -> None:
    # The compiled copy substitutes the token volume's name: a user's string equal to the
    # first pod's token name must not be rewritten to the next pods' token names.
    probe = FakeCluster(seed=7)
    token = probe.backend.create(_pod())["spec"]["volumes"][-1]["name"]
    cluster = FakeCluster(seed=7)
    cluster.when(image="busybox:*").succeed(after=1.0)
    manifest = _pod(env=[{"name": "TOKEN", "value": token}])
    tokens = set()
    for _ in range(3):
        for obj in _run_to_end(cluster, manifest):
            assert obj["spec"]["containers"][0]["env"] == [{"name": "TOKEN", "value": token}]
            tokens.add(obj["spec"]["volumes"][-1]["name"])
    assert token in tokens
    assert len(tokens) == 3


def test_a_memoised_invalid_spec_is_refused_the_same_way_every_time() -> None:
    cluster = FakeCluster()
    manifest = _pod(volumeMounts=[{"name": "nope", "mountPath": "/x"}])
    answers = []
    for _ in range(3):
        with pytest.raises(Invalid) as caught:
            cluster.backend.create(manifest)
        answers.append([(c.field, c.reason, c.message) for c in caught.value.causes])
    assert answers[0] == answers[1] == answers[2]
    assert ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound") in [
        (f, r) for f, r, _ in answers[0]
    ]


def test_the_memo_tells_json_types_apart() -> None:
    # True == 1 in Python, but not in JSON: a memo keyed by equality would answer one
    # with the other's result.
    cluster = FakeCluster()
    good = _pod()
    good["spec"]["terminationGracePeriodSeconds"] = 1
    bad = copy.deepcopy(good)
    bad["spec"]["terminationGracePeriodSeconds"] = True
    for _ in range(2):
        pod = cluster.backend.create(good)
        assert pod["spec"]["terminationGracePeriodSeconds"] == 1
        with pytest.raises(BadRequest):
            cluster.backend.create(bad)


def test_memoised_defaults_are_not_shared_between_pods() -> None:
    cluster = FakeCluster()
    manifest = _pod(resources={"limits": {"cpu": "1"}})
    a = cluster.backend.create(manifest)
    b = cluster.backend.create(manifest)
    a["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "9"
    stored = cluster.backend.get("Pod", "default", b["metadata"]["name"])
    assert stored["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1"}
    assert b["spec"] == {**stored["spec"]}


def test_answers_share_nothing_with_the_memoised_spec() -> None:
    # Pods made from one spec share its prepared subtrees in the store: no answer (a dry
    # run included) may hand one of them out.
    cluster = FakeCluster()
    manifest = _pod(env=[{"name": "A", "value": "1"}], resources={"limits": {"cpu": "1"}})
    manifest["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    answers = [cluster.backend.create(manifest) for _ in range(2)]
    answers.append(cluster.backend.create(manifest, dry_run=True))
    for answer in answers:
        spec = answer["spec"]
        spec["containers"][0]["env"][0]["value"] = "changed"
        spec["containers"][0]["resources"]["limits"]["cpu"] = "9"
        spec["volumes"][0]["emptyDir"]["medium"] = "Memory"
        spec["volumes"][-1]["projected"]["defaultMode"] = 0
        spec["tolerations"].clear()
    later = cluster.backend.create(manifest)
    for pod in [later, *cluster.pods()]:
        spec = pod["spec"]
        assert spec["containers"][0]["env"] == [{"name": "A", "value": "1"}]
        assert spec["containers"][0]["resources"]["limits"] == {"cpu": "1"}
        assert spec["volumes"][0] == {"name": "v", "emptyDir": {}}
        assert spec["volumes"][-1]["projected"]["defaultMode"] == 420
        assert len(spec["tolerations"]) == 2
