"""A container's rules: name, image, command, env, ports, mounts, security and policies.

:func:`prepare_container` decodes, defaults and checks what every container must get right
(in the order the server reports it); :func:`check_container` adds the PodSpec rules that
need the pod's volumes and its other containers' ports.
"""

from __future__ import annotations

import re
from typing import Any

from podrunner import _validation
from podrunner.backends.fake.field_errors import Errors, expect
from podrunner.backends.fake.memo import v
from podrunner.backends.fake.resources import check_resources

__all__ = ["check_container", "check_security_context", "prepare_container"]

_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
_ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
_IANA_SVC_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_IANA_HAS_LETTER = re.compile(r"[a-z]")
_SUBSCRIPT_RE = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


# -- decoding, defaulting and the rules of every container ----------------------------------------


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def prepare_container(
    container: object, field: str, path: str, errs: Errors, spec: dict[str, Any], seen: set[str]
) -> None:
    """Decode, default and check one container of ``spec.<field>`` at ``path``.

    ``seen`` holds the names of the pod's containers checked so far (names are unique
    across init and app containers).
    """
    expect("Pod", container, dict, f"PodSpec.spec.{field}")
    assert isinstance(container, dict)
    _check_name(container, path, errs, seen)
    image = _check_image(container, path, errs)
    for argv in ("command", "args"):
        if container.get(argv) is not None:
            expect("Pod", container[argv], list, f"Container.spec.containers.{argv}")
            for item in container[argv]:
                expect("Pod", item, str, f"Container.spec.containers.{argv}")
    env = container.get("env")
    if env is not None:
        _check_env_names(env, path, errs)
    resources = container.get("resources")
    if resources is None:
        container["resources"] = {}
    else:
        check_resources("Pod", resources, f"{path}.resources", errs, spec)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if image:
        container.setdefault("imagePullPolicy", _pull_policy(image))


def _check_name(container: dict[str, Any], path: str, errs: Errors, seen: set[str]) -> None:
    name = container.get("name")
    if name is not None:
        expect("Pod", name, str, "Container.spec.containers.name")
    if not name:
        errs.required(f"{path}.name")
        return
    error = v.container_name_error(name)
    if error:
        errs.invalid(f"{path}.name", name, error)
    elif name in seen:
        errs.duplicate(f"{path}.name", name)
    seen.add(name)


def _check_image(container: dict[str, Any], path: str, errs: Errors) -> str | None:
    image = container.get("image")
    if image is not None:
        expect("Pod", image, str, "Container.spec.containers.image")
    error = v.image_error(image or "")
    if error == "Required value":
        errs.required(f"{path}.image")
    elif error:
        errs.invalid(f"{path}.image", image, error)
    return image


def _check_env_names(env: object, path: str, errs: Errors) -> None:
    expect("Pod", env, list, "Container.spec.containers.env")
    assert isinstance(env, list)
    for j, var in enumerate(env):
        expect("Pod", var, dict, "Container.spec.containers.env")
        env_name = var.get("name")
        if env_name is not None:
            expect("Pod", env_name, str, "EnvVar.spec.containers.env.name")
        if not env_name:
            errs.required(f"{path}.env[{j}].name")
        else:
            error = v.env_name_error(env_name)
            if error:
                errs.invalid(f"{path}.env[{j}].name", env_name, error)
        if var.get("value") is not None:
            expect("Pod", var["value"], str, "EnvVar.spec.containers.env.value")


# -- the PodSpec rules of a container -------------------------------------------------------------


def check_container(
    c: dict[str, Any],
    path: str,
    errs: Errors,
    volumes: set[str],
    port_names: set[str],
    host_ports: set[str],
) -> None:
    """Check a container's env sources, ports, mounts, security context and policies.

    ``volumes`` are the pod's declared volumes; ``port_names`` and ``host_ports`` collect
    what the pod's containers use, for the duplicate checks.
    """
    _check_env(c, path, errs)
    _check_ports(c, path, errs, port_names, host_ports)
    _check_mounts(c, path, errs, volumes)
    check_security_context(c.get("securityContext"), f"{path}.securityContext", errs)
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in _PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES)
    tmp = c.get("terminationMessagePolicy")
    if tmp is not None and tmp not in _MESSAGE_POLICIES:
        errs.not_supported(f"{path}.terminationMessagePolicy", tmp, _MESSAGE_POLICIES)
    # A container's own policy (an init container's "Always" makes it a native sidecar).
    restart = c.get("restartPolicy")
    if isinstance(restart, str) and v.restart_policy_error(restart):
        errs.not_supported(f"{path}.restartPolicy", restart, v.RESTART_POLICIES)


def _check_env(c: dict[str, Any], path: str, errs: Errors) -> None:
    for j, var in enumerate(c.get("env") or ()):
        if not isinstance(var, dict):
            continue
        src = var.get("valueFrom")
        if isinstance(src, dict):
            _check_value_from(var, src, f"{path}.env[{j}].valueFrom", errs)
    for j, src in enumerate(c.get("envFrom") or ()):
        if isinstance(src, dict):
            _check_env_from(src, f"{path}.envFrom", j, errs)


def _check_value_from(var: dict[str, Any], src: dict[str, Any], vpath: str, errs: Errors) -> None:
    refs = [k for k in _ENV_SOURCES if src.get(k) is not None]
    if var.get("value"):
        errs.invalid(vpath, "", "may not be specified when `value` is not empty")
    if not refs:
        errs.invalid(
            vpath,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
            "`secretKeyRef`",
        )
        return
    if len(refs) > 1:
        errs.invalid(vpath, "", "may not have more than one field specified at a time")
        return
    ref = src[refs[0]]
    if not isinstance(ref, dict):
        return
    rpath = f"{vpath}.{refs[0]}"
    if refs[0] == "fieldRef":
        _check_field_ref(ref, rpath, errs)
    elif refs[0] in ("configMapKeyRef", "secretKeyRef"):
        _check_key_ref(ref, rpath, errs)


def _check_field_ref(ref: dict[str, Any], rpath: str, errs: Errors) -> None:
    ref.setdefault("apiVersion", "v1")
    fp = ref.get("fieldPath") or ""
    if not fp:
        errs.required(f"{rpath}.fieldPath")
    elif fp not in _ENV_FIELD_PATHS and not _SUBSCRIPT_RE.match(fp):
        errs.invalid(
            f"{rpath}.fieldPath",
            fp,
            f"error converting fieldPath: field label not supported: {fp}",
        )


def _check_key_ref(ref: dict[str, Any], rpath: str, errs: Errors) -> None:
    # validateConfigMapKeySelector/validateSecretKeySelector check the name as a DNS
    # subdomain even when it is empty: Invalid (one cause per message), not Required.
    ref_name = ref.get("name") or ""
    if isinstance(ref_name, str):
        error = _validation.dns1123_subdomain_error(ref_name)
        for message in error.split("; ") if error else ():
            errs.invalid(f"{rpath}.name", ref_name, message)
    if not ref.get("key"):
        errs.required(f"{rpath}.key")
    else:
        error = _validation.config_map_key_error(ref["key"])
        if error:
            errs.invalid(f"{rpath}.key", ref["key"], error)


def _check_env_from(src: dict[str, Any], epath: str, j: int, errs: Errors) -> None:
    refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
    if not refs:
        errs.invalid(epath, "", "must specify one of: `configMapRef` or `secretRef`")
        return
    if len(refs) > 1:
        errs.invalid(epath, "", "may not have more than one field specified at a time")
        return
    ref = src[refs[0]]
    npath = f"{epath}[{j}].{refs[0]}.name"
    ref_name = ref.get("name") if isinstance(ref, dict) else None
    if isinstance(ref, dict) and not ref_name:
        errs.required(npath)
    elif isinstance(ref_name, str):
        # ValidateConfigMapName/ValidateSecretName with prefix=true: a trailing dash is
        # allowed (maskTrailingDash).
        masked = ref_name[:-1] + "a" if len(ref_name) > 1 and ref_name[-1] == "-" else ref_name
        error = _validation.dns1123_subdomain_error(masked)
        for message in error.split("; ") if error else ():
            errs.invalid(npath, ref_name, message)


def _port_name_error(name: str) -> str | None:
    if len(name) > 15:
        return "must be no more than 15 characters"
    if not _IANA_SVC_RE.match(name):
        return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    if "--" in name:
        return "must not contain consecutive hyphens"
    if not _IANA_HAS_LETTER.search(name):
        return "must contain at least one letter (a-z)"
    return None


def _check_ports(
    c: dict[str, Any], path: str, errs: Errors, seen_names: set[str], host_ports: set[str]
) -> None:
    ports = c.get("ports")
    for j, port in enumerate(ports if isinstance(ports, list) else ()):
        if not isinstance(port, dict):
            continue
        ppath = f"{path}.ports[{j}]"
        name = port.get("name")
        if name:
            error = _port_name_error(name)
            if error:
                errs.invalid(f"{ppath}.name", name, error)
            elif name in seen_names:
                errs.duplicate(f"{ppath}.name", name)
            seen_names.add(name)
        _check_port_numbers(port, ppath, errs, host_ports)


def _check_port_numbers(
    port: dict[str, Any], ppath: str, errs: Errors, host_ports: set[str]
) -> None:
    number = port.get("containerPort")
    if not number:
        errs.required(f"{ppath}.containerPort")
    elif isinstance(number, int) and not 1 <= number <= 65535:
        errs.invalid(f"{ppath}.containerPort", number, "must be between 1 and 65535, inclusive")
    host = port.get("hostPort")
    if host == 0:
        del port["hostPort"]  # omitempty
    elif isinstance(host, int) and not 1 <= host <= 65535:
        errs.invalid(f"{ppath}.hostPort", host, "must be between 1 and 65535, inclusive")
    protocol = port.setdefault("protocol", "TCP")
    if protocol not in _PROTOCOLS:
        errs.not_supported(f"{ppath}.protocol", protocol, _PROTOCOLS)
    if host:
        key = f"{protocol}/{port.get('hostIP') or ''}/{host}"
        if key in host_ports:
            errs.duplicate(f"{ppath}.hostPort", key)
        host_ports.add(key)


def _check_mounts(c: dict[str, Any], path: str, errs: Errors, volumes: set[str]) -> None:
    mounts = c.get("volumeMounts")
    seen: set[str] = set()
    for j, mount in enumerate(mounts if isinstance(mounts, list) else ()):
        if not isinstance(mount, dict):
            continue
        mpath = f"{path}.volumeMounts[{j}]"
        name = mount.get("name") or ""
        if not name:
            errs.required(f"{mpath}.name")
        elif name not in volumes:
            errs.not_found(f"{mpath}.name", name)
        target = mount.get("mountPath") or ""
        if not target:
            errs.required(f"{mpath}.mountPath")
        elif target in seen:
            errs.invalid(f"{mpath}.mountPath", target, "must be unique")
        seen.add(target)


def check_security_context(ctx: object, path: str, errs: Errors) -> None:
    """The user and group ids of a pod's or container's security context must be valid."""
    if not isinstance(ctx, dict):
        return
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        value = ctx.get(field)
        if isinstance(value, int) and not 0 <= value <= 2147483647:
            errs.invalid(f"{path}.{field}", value, "must be between 0 and 2147483647, inclusive")
