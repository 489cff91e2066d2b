"""Hypothesis strategies for specs: valid ones, and invalid ones that name their field.

The grammars are written out here independently of ``podrunner._validation`` so the property
tests check the library against a second reading of the Kubernetes rules.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from podrunner import EnvVar, PodSpec, Resources, SecretRef, SecurityProfile, Volume

DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
QUANTITY_RE = re.compile(
    r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
RESERVED = {"app.kubernetes.io/managed-by", "app.kubernetes.io/component", "podrunner.dev/run-id"}


def is_dns_label(s: str) -> bool:
    return len(s) <= 63 and DNS_LABEL_RE.fullmatch(s) is not None


def is_label_key(s: str) -> bool:
    prefix, _, name = s.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return False
    if "/" in prefix or (not prefix and s.startswith("/")):
        return False
    return len(name) <= 63 and QUALIFIED_NAME_RE.fullmatch(name) is not None


def is_label_value(s: str) -> bool:
    return s == "" or (len(s) <= 63 and QUALIFIED_NAME_RE.fullmatch(s) is not None)


def is_quantity(s: str) -> bool:
    return QUANTITY_RE.fullmatch(s) is not None


dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
dns_subdomains = st.lists(dns_labels, min_size=1, max_size=3).map(".".join)
names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,30}[A-Za-z0-9])?", fullmatch=True)
label_keys = st.one_of(names, st.tuples(dns_subdomains, names).map("/".join)).filter(
    lambda k: k not in RESERVED
)
label_values = st.one_of(st.just(""), names)
env_names = st.text(
    st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="="),
    min_size=1,
    max_size=20,
)


@st.composite
def quantities(draw: st.DrawFn) -> str:
    """Non-negative quantities in every form the grammar allows."""
    whole = draw(st.integers(0, 4096))
    number = draw(
        st.sampled_from([f"{whole}", f"{whole}.", f"{whole}.{draw(st.integers(0, 999))}", ".5"])
    )
    suffix = draw(
        st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E"])
        | st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])
        | st.integers(-5, 9).map(lambda e: f"e{e}")
    )
    return draw(st.sampled_from(["", "+"])) + number + suffix


abs_paths = st.lists(dns_labels, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


@st.composite
def volumes(draw: st.DrawFn, mount_path: str) -> Volume:
    """A volume of any kind the restricted profile allows."""
    kind = draw(st.sampled_from(["pvc", "config_map", "secret", "empty_dir"]))
    if kind == "empty_dir":
        return Volume.empty_dir(mount_path, size_limit=draw(st.none() | quantities()))
    maker = getattr(Volume, kind)
    return maker(  # type: ignore[no-any-return]
        draw(dns_subdomains), mount_path, read_only=draw(st.booleans())
    )


def nul_free(max_size: int) -> st.SearchStrategy[str]:
    """Any text without NUL, which no string sent to execve or the API may hold."""
    return st.text(max_size=max_size).map(lambda s: s.replace("\x00", ""))


secret_texts = st.text(min_size=1, max_size=30).map(lambda s: "S3CR3T-" + s.replace("\x00", ""))


@st.composite
def valid_specs(draw: st.DrawFn) -> PodSpec:
    """Specs that must build; secret values all start with 'S3CR3T-'."""
    paths = draw(st.lists(abs_paths, unique_by=lambda p: p.rstrip("/"), max_size=5))
    # Mount paths must differ even after normalisation, and neither may be another's prefix
    # in a way the spec rejects (it only rejects equal paths).
    vol_paths, file_paths = paths[: len(paths) // 2], paths[len(paths) // 2 :]
    env = draw(st.dictionaries(env_names, nul_free(10), max_size=4))
    secret_env_names = draw(
        st.lists(env_names.filter(lambda n: n not in env), unique=True, max_size=3)
    )
    secret_env: dict[str, Any] = {
        n: draw(secret_texts | st.builds(SecretRef, dns_subdomains, st.just("key")))
        for n in secret_env_names
    }
    limit = draw(st.none() | quantities())
    kw: dict[str, Any] = {
        "name": draw(st.none() | dns_labels),
        "namespace": draw(st.none() | dns_labels),
        "labels": draw(st.dictionaries(label_keys, label_values, max_size=4)),
        "annotations": draw(st.dictionaries(label_keys, nul_free(20), max_size=3)),
        "env": draw(st.sampled_from([env, [EnvVar(k, x) for k, x in env.items()]])),
        "blank_env": draw(st.lists(env_names, max_size=4)),
        "secret_env": secret_env,
        "secret_files": {p: draw(secret_texts) for p in file_paths},
        "volumes": [draw(volumes(p)) for p in vol_paths],
        "resources": Resources(cpu_limit=limit, memory_limit=draw(st.none() | quantities())),
        "image_pull_secrets": draw(st.lists(dns_subdomains, max_size=2)),
        "restart_policy": draw(st.sampled_from(["Never", "OnFailure", "Always"])),
        "security": draw(st.sampled_from([SecurityProfile.RESTRICTED, SecurityProfile.BASELINE])),
        "active_deadline_seconds": draw(st.none() | st.integers(1, 10**6)),
        "component": draw(names),
    }
    command = draw(st.lists(st.text(max_size=10).map(lambda s: s.replace("\x00", "")), max_size=3))
    return PodSpec(
        draw(st.sampled_from(["busybox:1.36", "ghcr.io/x/y@sha256:abc"])), ["sh", *command], **kw
    )


# Invalid values per field: (keyword arguments for PodSpec, the field the error must name).
invalid_fields = st.one_of(
    st.tuples(
        st.text(max_size=70).filter(lambda s: not is_dns_label(s)).map(lambda s: {"name": s}),
        st.just("name"),
    ),
    st.tuples(
        st.text(max_size=70).filter(lambda s: not is_dns_label(s)).map(lambda s: {"namespace": s}),
        st.just("namespace"),
    ),
    st.tuples(
        st.text(max_size=80)
        .filter(lambda s: not is_label_key(s))
        .map(lambda k: {"labels": {k: "v"}}),
        st.just("labels"),
    ),
    st.tuples(
        st.sampled_from(sorted(RESERVED)).map(lambda k: {"labels": {k: "v"}}), st.just("labels")
    ),
    st.tuples(
        st.text(max_size=80)
        .filter(lambda s: not is_label_value(s))
        .map(lambda x: {"labels": {"k": x}}),
        st.just("labels[k]"),
    ),
    st.tuples(
        st.text(max_size=12)
        .filter(lambda s: not is_quantity(s))
        .map(lambda q: {"resources": {"cpu_limit": q}}),
        st.just("resources.cpu_limit"),
    ),
    st.tuples(
        st.text(min_size=1, max_size=10)
        .filter(lambda s: "=" in s or any(not 32 <= ord(c) <= 126 for c in s))
        .map(lambda n: {"env": {n: "v"}}),
        st.just("env.name"),
    ),
    st.tuples(
        st.text(max_size=12)
        .filter(lambda s: s not in ("Always", "OnFailure", "Never"))
        .map(lambda p: {"restart_policy": p}),
        st.just("restart_policy"),
    ),
    st.tuples(
        st.integers(max_value=0).map(lambda n: {"active_deadline_seconds": n}),
        st.just("active_deadline_seconds"),
    ),
    st.tuples(
        st.text(max_size=10)
        .filter(lambda s: not s.startswith("/"))
        .map(lambda p: {"working_dir": p}),
        st.just("working_dir"),
    ),
    st.tuples(
        abs_paths.map(lambda p: {"volumes": [Volume.empty_dir(p), Volume.empty_dir(p)]}),
        st.just("volumes[1].mount_path"),
    ),
    st.tuples(
        abs_paths.map(lambda p: {"volumes": [Volume.host_path("/srv", p)]}),
        st.just("volumes[0]"),
    ),
    st.tuples(st.just({"image": ""}), st.just("image")),
    st.tuples(st.just({"command": []}), st.just("command")),
    st.tuples(st.just({"command": [""]}), st.just("command[0]")),
)


def build_invalid(kw: dict[str, Any]) -> PodSpec:
    """Build a spec from an invalid_fields entry (resources given as a dict of fields)."""
    kw = dict(kw)
    image = kw.pop("image", "busybox")
    command = kw.pop("command", ["true"])
    if isinstance(kw.get("resources"), dict):
        kw["resources"] = Resources(**kw["resources"])
    return PodSpec(image, command, **kw)
