from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fakepods import pod
from hypothesis import given, settings
from hypothesis import strategies as st

from podrunner.backends.fake import FakeCluster
from podrunner.errors import BackendError, BadRequest, Invalid, NotFound


def _invalid(cluster: FakeCluster, manifest: Any) -> Invalid:
    with pytest.raises(Invalid) as info:
        cluster.backend.create(manifest)
    assert info.value.status == 422
    return info.value


def test_bad_name_is_422_with_cause(cluster: FakeCluster) -> None:
    """An invalid pod name is 422 with the server's cause and message."""
    error = _invalid(cluster, pod("Bad_Name"))
    cause = error.causes[0]
    assert cause.field == "metadata.name"
    assert cause.reason == "FieldValueInvalid"
    assert cause.message.startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    assert error.message.startswith('Pod "Bad_Name" is invalid: metadata.name: Invalid value')


def test_missing_name_is_required(cluster: FakeCluster) -> None:
    """Neither name nor generateName is a 422 Required value."""
    manifest = pod("a")
    del manifest["metadata"]["name"]
    error = _invalid(cluster, manifest)
    assert error.causes[0].reason == "FieldValueRequired"
    assert error.causes[0].message == "Required value: name or generateName is required"


def test_labels_and_annotations(cluster: FakeCluster) -> None:
    """Bad label keys/values and oversized annotations are 422 causes."""
    error = _invalid(cluster, pod("a", labels={"bad key": "ok", "k": "bad value!"}))
    assert [c.field for c in error.causes] == ["metadata.labels", "metadata.labels"]
    error = _invalid(cluster, pod("a", annotations={"a": "x" * 300_000}))
    assert error.causes[0].reason == "FieldValueTooLong"
    assert error.causes[0].message == "Too long: may not be more than 262144 bytes"


def test_containers(cluster: FakeCluster) -> None:
    """Container names must be unique labels and images are required."""
    manifest = pod("a")
    manifest["spec"]["containers"] = [
        {"name": "c", "image": "x"},
        {"name": "c", "image": "x"},
        {"name": "Bad", "image": ""},
    ]
    error = _invalid(cluster, manifest)
    reasons = {(c.field, c.reason) for c in error.causes}
    assert ("spec.containers[1].name", "FieldValueDuplicate") in reasons
    assert ("spec.containers[2].name", "FieldValueInvalid") in reasons
    assert ("spec.containers[2].image", "FieldValueRequired") in reasons
    assert error.message.startswith('Pod "a" is invalid: [')


def test_no_containers(cluster: FakeCluster) -> None:
    """A pod without containers is 422 Required."""
    manifest = pod("a")
    del manifest["spec"]["containers"]
    assert _invalid(cluster, manifest).causes[0].field == "spec.containers"


def test_restart_policy_and_env(cluster: FakeCluster) -> None:
    """An unknown restart policy and a bad env name are 422."""
    error = _invalid(cluster, pod("a", restartPolicy="Sometimes"))
    assert error.causes[0].reason == "FieldValueNotSupported"
    assert 'supported values: "Always", "Never", "OnFailure"' in error.causes[0].message
    manifest = pod("a")
    manifest["spec"]["containers"][0]["env"] = [{"name": "A=B", "value": "1"}]
    assert _invalid(cluster, manifest).causes[0].field == "spec.containers[0].env[0].name"


def test_bad_quantity_is_400(cluster: FakeCluster) -> None:
    """A malformed quantity fails decoding: 400 with the server's message."""
    manifest = pod("a")
    manifest["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "lots"}}
    with pytest.raises(BadRequest) as info:
        cluster.backend.create(manifest)
    assert "quantities must match the regular expression" in info.value.message


def test_requests_above_limits(cluster: FakeCluster) -> None:
    """A request above its limit is 422."""
    manifest = pod("a")
    manifest["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "1"},
        "requests": {"cpu": "2"},
    }
    assert (
        "must be less than or equal to cpu limit" in _invalid(cluster, manifest).causes[0].message
    )


def test_generate_name_prefix_checked(cluster: FakeCluster) -> None:
    """An invalid generateName is reported on metadata.generateName."""
    manifest = pod("")
    manifest["metadata"]["generateName"] = "Bad-"
    assert _invalid(cluster, manifest).causes[0].field == "metadata.generateName"


def test_secret_keys_and_base64(cluster: FakeCluster) -> None:
    """Secret data keys are validated and values must be base64."""
    error = _invalid(
        cluster, {"kind": "Secret", "metadata": {"name": "s"}, "data": {"a b": "eA=="}}
    )
    assert error.causes[0].field == "data[a b]"
    with pytest.raises(BadRequest):
        cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "!!"}})


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        ("not a dict", BadRequest),
        ({"metadata": {"name": "a"}}, BadRequest),
        ({"kind": "Deployment", "metadata": {"name": "a"}}, NotFound),
        ({"kind": "Pod", "apiVersion": "apps/v1", "metadata": {"name": "a"}}, BadRequest),
        ({"kind": "Pod", "metadata": "a"}, BadRequest),
        ({"kind": "Pod", "metadata": {"name": 3}}, BadRequest),
        ({"kind": "Pod", "metadata": {"name": "a", "labels": ["x"]}}, BadRequest),
        ({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": "x"}}, BadRequest),
        (
            {
                "kind": "Pod",
                "metadata": {"name": "a"},
                "spec": {"containers": [{"name": "c", "image": 1}]},
            },
            BadRequest,
        ),
        ({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": {1, 2}}}, BadRequest),
        ({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": float("nan")}}, BadRequest),
        ({"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "5"}}, BadRequest),
    ],
)
def test_malformed_input_answers_like_the_server(
    cluster: FakeCluster, manifest: Any, error: type[BackendError]
) -> None:
    """Malformed input is a 400/404 answer, never an internal exception."""
    with pytest.raises(error):
        cluster.backend.create(manifest)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=True),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "kind", "metadata", "spec", "containers", "image", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["Pod", "Secret", "ConfigMap", "Namespace", "Event", None, 5]),
    meta=_json,
    spec=_json,
)
def test_random_input_never_crashes(kind: Any, meta: Any, spec: Any) -> None:
    """Whatever a caller sends, the answer is an object or a BackendError.

    The patches go to objects that exist, so the merge and the validation of an existing
    object are what gets fuzzed, not the 404 of a missing one.
    """
    cluster = FakeCluster()
    cluster.backend.create(pod("a"))
    cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
    manifest = {"kind": kind, "metadata": meta, "spec": spec, "data": spec}
    for call in (
        lambda: cluster.backend.create(manifest),
        lambda: cluster.backend.replace(manifest),
        lambda: cluster.backend.patch("Pod", "default", "a", manifest),
        lambda: cluster.backend.patch("ConfigMap", "default", "c", manifest),
    ):
        with contextlib.suppress(BackendError):
            call()
    cluster.advance(100)
    # The store is still whole: both objects are there and read back as objects.
    assert cluster.backend.get("Pod", "default", "a")["metadata"]["name"] == "a"
    assert cluster.backend.get("ConfigMap", "default", "c")["metadata"]["name"] == "c"


@pytest.mark.parametrize("selector", [{"app": "x"}, ["app=x"], 5, b"app=x"])
@pytest.mark.parametrize("which", ["label_selector", "field_selector"])
def test_a_selector_that_is_not_a_string_is_400(
    cluster: FakeCluster, which: str, selector: Any
) -> None:
    """Lists and watches answer a non-string selector with 400, naming the value."""
    with pytest.raises(BadRequest, match="a selector is a string"):
        cluster.backend.list("Pod", "default", **{which: selector})
    with pytest.raises(BadRequest, match=f"{which.split('_')[0]} selector"):
        cluster.backend.watch("Pod", "default", **{which: selector})
