#!/usr/bin/env python3
"""`docker run` flags that run a container the way the base manifests run it.

deploy/container-check.sh evaluates what this prints (bash assignments) for each service:

  manifest-to-docker.py SECRETS_DIR registry referral meeting

For the service's Deployment ("serve") and its migration Job ("migrate"):
  <svc>_<mode>_flags   user and group, read-only root, capabilities, no privilege
                       escalation, CPU and memory limits, the env files of the ConfigMaps
                       (the base kustomization's configMapGenerator), emptyDir volumes as
                       tmpfs, Secret volumes as read-only binds of SECRETS_DIR/<secret name>,
                       the command as --entrypoint (and, for serve, the grace period as
                       --stop-timeout)
  <svc>_<mode>_args    the rest of the command and the args
For serve also: the gRPC and metrics ports, the gRPC health names of the startup,
readiness and liveness probes, the grace period and the preStop sleep. Then once:
`peer_hosts` (the host names of the peer URLs in the env files, which the check maps to
loopback), `ports` (every container port), and `secret_mode` / `secret_group`
(associative arrays: each Secret's defaultMode and the fsGroup that reads it).

Anything the manifests ask for that `docker run` cannot reproduce faithfully here (an
unknown volume kind, a privileged container, a seccomp profile other than the runtime
default, an env var from a secret in the base) is an error, not a silent difference.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

BASE = Path(__file__).resolve().parent / "k8s" / "base"
QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


class Unsupported(Exception):
    pass


def quantity(text: str | int) -> int:
    """A Kubernetes memory/size quantity in bytes ("256Mi", "64Mi", "1G", "1024")."""
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(text))
    if not m or (m.group(2) and m.group(2) not in QUANTITY):
        raise Unsupported(f"quantity {text!r}")
    return int(m.group(1)) * QUANTITY.get(m.group(2), 1)


def cpus(text: str | int) -> str:
    """A CPU quantity as docker's --cpus ("500m" -> 0.5, "1" -> 1)."""
    s = str(text)
    value = int(s[:-1]) / 1000 if s.endswith("m") else float(s)
    return f"{value:g}"


def assign(name: str, value) -> str:
    if isinstance(value, list):
        return f"{name}=(" + " ".join(shlex.quote(str(v)) for v in value) + ")"
    return f"{name}={shlex.quote(str(value))}"


def env_files() -> dict[str, list[Path]]:
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    return {g["name"]: [BASE / e for e in g.get("envs", [])] for g in kust.get("configMapGenerator", [])}


def peer_hosts(path: Path) -> set[str]:
    hosts = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"[A-Z0-9_]+_URL=https?://([A-Za-z][A-Za-z0-9.-]*)(:\d+)?/?", line.strip())
        if m:
            hosts.add(m.group(1))
    return hosts


def run_flags(workload: dict, secrets_dir: str, generators: dict, out: dict) -> tuple[list, list, dict, dict]:
    """(flags, args, the container, the pod spec) of a workload's one container."""
    pod = workload["spec"]["template"]["spec"]
    containers = pod["containers"]
    if len(containers) != 1 or pod.get("initContainers"):
        raise Unsupported(f"{workload['metadata']['name']}: one container expected")
    c = containers[0]
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    sc = {**psc, **csc}
    user = sc.get("runAsUser")
    if not user:
        raise Unsupported(f"{c['name']}: no non-root runAsUser")
    flags = [f"--user={user}:{sc.get('runAsGroup', user)}"]
    if csc.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if csc.get("privileged"):
        raise Unsupported(f"{c['name']}: privileged")
    if csc.get("allowPrivilegeEscalation") is False:
        flags.append("--security-opt=no-new-privileges")
    caps = csc.get("capabilities") or {}
    flags += [f"--cap-drop={d}" for d in caps.get("drop") or []]
    flags += [f"--cap-add={a}" for a in caps.get("add") or []]
    # Docker applies its default seccomp profile unless told otherwise: the runtime default.
    if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        raise Unsupported(f"{c['name']}: seccomp profile other than RuntimeDefault")
    limits = (c.get("resources") or {}).get("limits") or {}
    if "cpu" in limits:
        flags.append(f"--cpus={cpus(limits['cpu'])}")
    if "memory" in limits:
        flags.append(f"--memory={quantity(limits['memory'])}")
    for src in c.get("envFrom") or []:
        name = (src.get("configMapRef") or {}).get("name")
        if name not in generators or src.get("prefix"):
            raise Unsupported(f"{c['name']}: envFrom {src}")
        for f in generators[name]:
            flags.append(f"--env-file={f}")
            out["peers"] |= peer_hosts(f)
    for e in c.get("env") or []:
        if "value" not in e:
            raise Unsupported(f"{c['name']}: env {e['name']} from {sorted(e)}")
        flags.append(f"--env={e['name']}={e['value']}")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        v = volumes[m["name"]]
        if "emptyDir" in v:
            size = (v["emptyDir"] or {}).get("sizeLimit")
            opts = f"size={quantity(size)}," if size else ""
            flags.append(f"--tmpfs={m['mountPath']}:{opts}mode=1777")
        elif "secret" in v:
            name = v["secret"]["secretName"]
            if v["secret"].get("items"):
                raise Unsupported(f"{c['name']}: secret {name} with items")
            flags.append(f"--volume={secrets_dir}/{name}:{m['mountPath']}:ro")
            out["secret_mode"][name] = oct(v["secret"].get("defaultMode", 0o644))[2:]
            out["secret_group"][name] = psc.get("fsGroup", sc.get("runAsGroup", user))
        else:
            raise Unsupported(f"{c['name']}: volume {m['name']} of kind {sorted(set(v) - {'name'})}")
    command = c.get("command") or []
    if not command:
        raise Unsupported(f"{c['name']}: no command (the image has no ENTRYPOINT)")
    flags.append(f"--entrypoint={command[0]}")
    return flags, command[1:] + list(c.get("args") or []), c, pod


def grpc_probe(c: dict, kind: str) -> dict:
    probe = (c.get(kind) or {}).get("grpc")
    if not probe:
        raise Unsupported(f"{c['name']}: no gRPC {kind}")
    return probe


def main(argv: list[str]) -> int:
    secrets_dir, services = argv[0], argv[1:]
    generators = env_files()
    out: dict = {"peers": set(), "secret_mode": {}, "secret_group": {}}
    lines, ports = [], []
    try:
        for svc in services:
            docs = [d for d in yaml.safe_load_all((BASE / f"{svc}.yaml").read_text(encoding="utf-8")) if d]
            by_kind = {d["kind"]: d for d in docs if d["kind"] in ("Deployment", "Job")}
            if set(by_kind) != {"Deployment", "Job"}:
                raise Unsupported(f"{svc}.yaml: a Deployment and a migration Job expected")
            flags, args, c, pod = run_flags(by_kind["Deployment"], secrets_dir, generators, out)
            grace = pod.get("terminationGracePeriodSeconds", 30)
            flags.append(f"--stop-timeout={grace}")
            lines += [assign(f"{svc}_serve_flags", flags), assign(f"{svc}_serve_args", args)]
            named = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            ports += [p["containerPort"] for p in c.get("ports") or []]
            startup = grpc_probe(c, "startupProbe")
            lines += [
                assign(f"{svc}_grpc_port", named["grpc"]),
                assign(f"{svc}_metrics_port", named["metrics"]),
                assign(f"{svc}_startup_service", startup.get("service", "")),
                assign(f"{svc}_startup_port", startup["port"]),
                assign(f"{svc}_startup_budget", (c["startupProbe"].get("periodSeconds", 10))
                       * (c["startupProbe"].get("failureThreshold", 3))),
                assign(f"{svc}_readiness_service", grpc_probe(c, "readinessProbe").get("service", "")),
                assign(f"{svc}_liveness_service", grpc_probe(c, "livenessProbe").get("service", "")),
                assign(f"{svc}_grace", grace),
                assign(f"{svc}_prestop",
                       (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)),
            ]
            flags, args, _, _ = run_flags(by_kind["Job"], secrets_dir, generators, out)
            lines += [assign(f"{svc}_migrate_flags", flags), assign(f"{svc}_migrate_args", args)]
    except (Unsupported, KeyError) as e:
        print(f"manifest-to-docker: cannot reproduce with docker run: {e}", file=sys.stderr)
        return 1
    lines.append(assign("peer_hosts", sorted(out["peers"])))
    lines.append(assign("ports", ports))
    lines.append("declare -gA secret_mode=() secret_group=()")
    for name, mode in sorted(out["secret_mode"].items()):
        lines.append(f"secret_mode[{shlex.quote(name)}]={mode}")
        lines.append(f"secret_group[{shlex.quote(name)}]={out['secret_group'][name]}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
