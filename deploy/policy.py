#!/usr/bin/env python3
"""Checks of the rendered Kubernetes manifests that generic tools do not make.

deploy/check.sh runs it on the output of `kubectl kustomize` of each overlay:

  policy.py split RENDERED CORE_OUT CRD_OUT
      Separates the custom resources this suite uses (CloudNativePG Cluster, cert-manager
      Issuer and Certificate) from the built-in kinds, so that kubernetes-validate --strict
      sees only kinds it has schemas for.
  policy.py crds CRD_FILE [RENDERED]
      Checks the custom resources: known kinds only, the fields CloudNativePG's Cluster
      has, three instances, the initdb database and owner; the fields cert-manager's Issuer
      and Certificate have, every Certificate's issuer present, a service's certificate for
      serving and client use with the bare service name first (its identity), keys rotated;
      with RENDERED, that every "<cluster>-app" secret the services read belongs to a
      Cluster in the same namespace, and every TLS secret they mount to a Certificate of
      theirs.
  policy.py policy RENDERED [--require-tls]
      (--require-tls: every service serves TLS with mutual TLS, its peers over https.)
      Every Deployment: probes (native gRPC readiness and liveness for the services),
      requests and limits, non-root and the rest of the security context, a
      PodDisruptionBudget and a NetworkPolicy that select it, at least two replicas
      (spec.replicas, or the minimum of the HPA that owns the count); the
      only exception: a single-replica SQLite Deployment (dev), which has to be exactly
      that (1 replica, Recreate, on a volume, no HPA, no PDB). Also: the grace period covers
      preStop + SHUTDOWN_DRAIN_DELAY + SHUTDOWN_GRACE, a headless Service and a
      migration Job per service, no Secret objects (keys are never inlined), every checkov
      skip annotation gives its reason. With TLS on (TLS_CERT), the key and CA files come
      from a mounted secret, the probes use the plaintext health port (HEALTH_LISTEN).
  policy.py drift RENDERED BIN_DIR
      Every environment variable a service container gets (OTEL_* aside) is one its binary
      documents in `BIN_DIR/<bin> --help`; every container port, listen address, probe port
      (the health port with TLS on) and peer URL matches the default ports that help gives.

Exit status 0 when every check passes, 1 otherwise; each failure is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

SERVICES = ("registry", "referral", "meeting")
BIN_PREFIX = "/usr/local/bin/"
GRPC_SERVICE = {
    "registry": "mosharekat.registry.v1.RegistryService",
    "referral": "mosharekat.referral.v1.ReferralService",
    "meeting": "mosharekat.meeting.v1.MeetingService",
}
# Peer URL variables and the service each one names.
PEER_URLS = {"REGISTRY_URL": "registry", "REFERRAL_URL": "referral"}
WORKLOADS = ("Deployment", "Job", "StatefulSet", "DaemonSet")

# Custom resources handled here rather than by kubernetes-validate.
CRD_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
}
# The spec fields of cert-manager's Issuer and Certificate (cert-manager.io/v1).
CM_ISSUER_SPEC_FIELDS = {"acme", "ca", "selfSigned", "vault", "venafi"}
CM_CERTIFICATE_SPEC_FIELDS = {
    "additionalOutputFormats", "commonName", "dnsNames", "duration", "emailAddresses",
    "encodeUsagesInRequest", "ipAddresses", "isCA", "issuerRef", "keystores", "literalSubject",
    "nameConstraints", "otherNames", "privateKey", "renewBefore", "renewBeforePercentage",
    "revisionHistoryLimit", "secretName", "secretTemplate", "signatureAlgorithm", "subject",
    "uris", "usages",
}
CM_USAGES = {
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
}
# The top-level spec fields of CloudNativePG's Cluster (postgresql.cnpg.io/v1) that these
# manifests may use; anything else is a typo or needs adding here on purpose.
CNPG_CLUSTER_SPEC_FIELDS = {
    "affinity", "backup", "bootstrap", "certificates", "description", "enableSuperuserAccess",
    "env", "envFrom", "externalClusters", "imageName", "imagePullPolicy", "imagePullSecrets",
    "inheritedMetadata", "instances", "logLevel", "managed", "maxSyncReplicas",
    "minSyncReplicas", "monitoring", "nodeMaintenanceWindow", "plugins", "postgresGID",
    "postgresUID", "postgresql", "primaryUpdateMethod", "primaryUpdateStrategy",
    "priorityClassName", "projectedVolumeTemplate", "replica", "replicationSlots",
    "resources", "schedulerName", "seccompProfile", "serviceAccountTemplate",
    "smartShutdownTimeout", "startDelay", "stopDelay", "storage", "superuserSecret",
    "switchoverDelay", "tablespaces", "topologySpreadConstraints", "walStorage",
    "failoverDelay", "enablePDB", "livenessProbeTimeout", "ephemeralVolumeSource",
    "ephemeralVolumesSizeLimit", "imageCatalogRef",
}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked = 0

    def check(self, ok: bool, what: str) -> bool:
        self.checked += 1
        if not ok:
            self.failures.append(what)
        return ok

    def finish(self, title: str) -> int:
        for f in self.failures:
            print(f"FAIL {f}")
        print(f"{title}: {self.checked - len(self.failures)} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def ref(d: dict) -> str:
    ns = d.get("metadata", {}).get("namespace", "")
    return f"{d['kind']}/{ns + '/' if ns else ''}{d['metadata']['name']}"


def labels_match(selector: dict | None, labels: dict) -> bool:
    """Whether a LabelSelector selects an object with these labels (an empty one: all)."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def duration_seconds(text: str) -> float:
    """A humantime duration as the services parse it: "5s", "1m 30s", "500ms"."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"not a duration: {text!r}")
    for n, u in parts:
        if u not in units:
            raise ValueError(f"unknown unit in {text!r}")
        total += float(n) * units[u]
    return total


def pod_spec(d: dict) -> dict:
    return d["spec"]["template"]["spec"]


def service_of(container: dict) -> str | None:
    """The suite's binary a container runs, from its command."""
    cmd = container.get("command") or []
    if cmd and os.path.basename(cmd[0]) in SERVICES:
        return os.path.basename(cmd[0])
    return None


def container_env(container: dict, ns: str, configmaps: dict) -> tuple[dict, list[str]]:
    """The container's environment: name -> value (a dict for valueFrom), and problems."""
    env: dict = {}
    problems = []
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            name = src["configMapRef"]["name"]
            cm = configmaps.get((ns, name))
            if cm is None:
                problems.append(f"envFrom ConfigMap {name} is not in the rendered output")
                continue
            prefix = src.get("prefix", "")
            for k, v in (cm.get("data") or {}).items():
                env[prefix + k] = v
        else:
            problems.append(f"envFrom {sorted(src)} cannot be resolved offline")
    for e in container.get("env") or []:
        env[e["name"]] = e.get("value", e.get("valueFrom"))
    return env, problems


def index(docs: list[dict]) -> dict:
    idx: dict = {"configmaps": {}}
    for d in docs:
        if d["kind"] == "ConfigMap":
            idx["configmaps"][(d["metadata"].get("namespace", ""), d["metadata"]["name"])] = d
    return idx


# ---------------------------------------------------------------------------- split


def cmd_split(rendered: str, core_out: str, crd_out: str) -> int:
    docs = load(rendered)
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
    crds = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRD_KINDS]
    with open(core_out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(core, f, sort_keys=False)
    with open(crd_out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(crds, f, sort_keys=False)
    print(f"{len(core)} built-in objects, {len(crds)} custom resources "
          f"({', '.join(sorted({d['kind'] for d in crds})) or 'none'})")
    return 0


# ---------------------------------------------------------------------------- crds


def cmd_crds(crd_file: str, rendered: str | None) -> int:
    r = Report()
    docs = load(crd_file)
    clusters = {}
    issuers = {(d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
               for d in docs if d.get("kind") == "Issuer"}
    certificates = {}
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        if not r.check(key in CRD_KINDS, f"{d.get('kind')} {d.get('apiVersion')}: no check for this kind"):
            continue
        name = d.get("metadata", {}).get("name", "")
        where = ref(d)
        if d["kind"] in ("Issuer", "Certificate"):
            check_cert_manager(r, d, issuers)
            if d["kind"] == "Certificate":
                certificates[(d["metadata"].get("namespace", ""), d["spec"].get("secretName"))] = d
            continue
        r.check(bool(DNS_LABEL.match(name)) and len(name) <= 50, f"{where}: name must be a short DNS label")
        r.check(set(d) <= {"apiVersion", "kind", "metadata", "spec"}, f"{where}: unexpected top-level fields")
        spec = d.get("spec") or {}
        unknown = sorted(set(spec) - CNPG_CLUSTER_SPEC_FIELDS)
        r.check(not unknown, f"{where}: fields CloudNativePG's Cluster does not have: {unknown}")
        inst = spec.get("instances")
        r.check(isinstance(inst, int) and inst >= 3,
                f"{where}: instances must be an integer >= 3 (a primary and two replicas), got {inst!r}")
        size = (spec.get("storage") or {}).get("size")
        r.check(isinstance(size, str) and bool(QUANTITY.match(size)), f"{where}: storage.size must be a quantity")
        initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
        r.check(isinstance(initdb.get("database"), str) and isinstance(initdb.get("owner"), str),
                f"{where}: bootstrap.initdb needs database and owner (the app secret's user)")
        r.check(spec.get("enableSuperuserAccess", False) is False,
                f"{where}: superuser access must stay off (no superuser secret)")
        params = (spec.get("postgresql") or {}).get("parameters") or {}
        r.check(all(isinstance(v, str) for v in params.values()),
                f"{where}: postgresql.parameters values must be strings")
        res = spec.get("resources") or {}
        r.check(bool(res.get("requests")) and bool(res.get("limits")), f"{where}: resources needs requests and limits")
        clusters[(d["metadata"].get("namespace", ""), name)] = d
    if rendered:
        rendered_docs = load(rendered)
        idx = index(rendered_docs)
        for d in rendered_docs:
            if d["kind"] not in WORKLOADS:
                continue
            ns = d["metadata"].get("namespace", "")
            for c in pod_spec(d).get("containers", []):
                for e in c.get("env") or []:
                    sk = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
                    sname = sk.get("name", "")
                    if sname.endswith("-app") or sname.endswith("-superuser"):
                        cluster = sname.rsplit("-", 1)[0]
                        r.check((ns, cluster) in clusters,
                                f"{ref(d)}: reads secret {sname}, but no Cluster {cluster} is in {ns or 'the output'}")
                        r.check(sk.get("key") == "uri", f"{ref(d)}: {e['name']} should take the secret's 'uri' key")
            # The TLS files a service reads come from a Certificate issued for it.
            if d["kind"] != "Deployment":
                continue
            for c in pod_spec(d).get("containers", []):
                svc = service_of(c)
                env, _ = container_env(c, ns, idx["configmaps"])
                if not svc or not isinstance(env.get("TLS_CERT"), str):
                    continue
                vol = mounted_secret(pod_spec(d), c, env["TLS_CERT"])
                cert = certificates.get((ns, vol))
                if r.check(cert is not None,
                           f"{ref(d)}: TLS_CERT {env['TLS_CERT']} is not in the secret of a Certificate in {ns}"):
                    names = cert["spec"].get("dnsNames") or []
                    r.check(names[:1] == [svc],
                            f"{ref(cert)}: mounted by {svc}, its first DNS name must be {svc!r} (its identity)")
    return r.finish("custom resources")


def check_cert_manager(r: Report, d: dict, issuers: dict) -> None:
    """An Issuer or a Certificate of cert-manager."""
    where = ref(d)
    ns = d["metadata"].get("namespace", "")
    name = d["metadata"].get("name", "")
    r.check(bool(DNS_LABEL.match(name)), f"{where}: name must be a DNS label")
    r.check(set(d) <= {"apiVersion", "kind", "metadata", "spec"}, f"{where}: unexpected top-level fields")
    spec = d.get("spec") or {}
    if d["kind"] == "Issuer":
        unknown = sorted(set(spec) - CM_ISSUER_SPEC_FIELDS)
        r.check(not unknown, f"{where}: fields cert-manager's Issuer does not have: {unknown}")
        r.check(len(set(spec) & CM_ISSUER_SPEC_FIELDS) == 1, f"{where}: exactly one issuer type")
        if "ca" in spec:
            r.check(isinstance((spec["ca"] or {}).get("secretName"), str), f"{where}: ca.secretName missing")
        return
    unknown = sorted(set(spec) - CM_CERTIFICATE_SPEC_FIELDS)
    r.check(not unknown, f"{where}: fields cert-manager's Certificate does not have: {unknown}")
    r.check(isinstance(spec.get("secretName"), str) and bool(DNS_LABEL.match(spec.get("secretName", ""))),
            f"{where}: secretName must be a DNS label")
    ir = spec.get("issuerRef") or {}
    r.check(ir.get("kind", "Issuer") == "Issuer" and (ns, ir.get("name")) in issuers,
            f"{where}: issuerRef {ir.get('name')!r} is no Issuer in {ns or 'the output'}")
    r.check(ir.get("group", "cert-manager.io") == "cert-manager.io", f"{where}: issuerRef.group")
    usages = spec.get("usages") or []
    r.check(set(usages) <= CM_USAGES, f"{where}: unknown usages {sorted(set(usages) - CM_USAGES)}")
    for field in ("duration", "renewBefore"):
        v = spec.get(field)
        r.check(v is None or bool(re.match(r"^(\d+h)?(\d+m)?(\d+s)?$", str(v))) and v != "",
                f"{where}: {field} {v!r} is not a Go duration")
    pk = spec.get("privateKey") or {}
    r.check(pk.get("rotationPolicy") == "Always", f"{where}: privateKey.rotationPolicy must be Always (a new key each renewal)")
    if spec.get("isCA"):
        r.check("commonName" in spec, f"{where}: a CA certificate needs a commonName")
        return
    names = spec.get("dnsNames") or []
    r.check(bool(names) and all(DNS_LABEL.match(n.split(".")[0]) for n in names), f"{where}: dnsNames needed")
    if name in SERVICES:
        r.check(names[:1] == [name], f"{where}: a service's certificate names the service first (its identity)")
        r.check({"server auth", "client auth"} <= set(usages),
                f"{where}: a service's certificate serves and calls its peers: usages need server auth and client auth")


def mounted_secret(spec: dict, container: dict, path: str) -> str | None:
    """The name of the secret whose volume holds `path` in the container, if any."""
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            return ((vols.get(m["name"]) or {}).get("secret") or {}).get("secretName")
    return None


# ---------------------------------------------------------------------------- policy


def cmd_policy(rendered: str, repo_root: Path, require_tls: bool = False) -> int:
    r = Report()
    docs = load(rendered)
    idx = index(docs)
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    # Keys and passwords never travel in the manifests.
    for d in by_kind.get("Secret", []):
        r.check(False, f"{ref(d)}: Secret objects must not be in the manifests (create them out of band)")

    # Every checkov skip says why.
    for d in docs:
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k.startswith(("checkov.io/skip", "bridgecrew.io/skip")):
                m = re.match(r"^(CKV2?_[A-Z0-9]+_\d+)=(.+)$", str(v))
                r.check(bool(m) and len(m.group(2).strip()) >= 10 and "=" not in m.group(2),
                        f"{ref(d)}: annotation {k} must be 'CKV_..._N=reason' with a reason (and no '=' in it)")

    # A default deny for each namespace with workloads.
    deny_ns = {
        p["metadata"].get("namespace", "")
        for p in by_kind.get("NetworkPolicy", [])
        if not (p["spec"].get("podSelector") or {})
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
    }

    dockerfile = (repo_root / "deploy" / "Dockerfile").read_text(encoding="utf-8")

    migrate_jobs: dict[tuple[str, str], dict] = {}
    for d in by_kind.get("Job", []):
        for c in pod_spec(d).get("containers", []):
            svc = service_of(c)
            if svc and (c.get("args") or [None])[0] == "migrate":
                migrate_jobs[(d["metadata"].get("namespace", ""), svc)] = d

    for d in by_kind.get("Deployment", []) + by_kind.get("Job", []):
        where = ref(d)
        ns = d["metadata"].get("namespace", "")
        spec = pod_spec(d)
        r.check(ns != "", f"{where}: no namespace (render an overlay, not the base)")
        r.check(spec.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken must be false")
        r.check(ns in deny_ns, f"{where}: namespace {ns!r} has no default deny-all NetworkPolicy")
        psc = spec.get("securityContext") or {}
        r.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                f"{where}: pod seccompProfile must be RuntimeDefault")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            cw = f"{where} container {c['name']}"
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for rk in ("cpu", "memory"):
                    r.check(rk in (res.get(part) or {}), f"{cw}: resources.{part}.{rk} missing")
            sc = c.get("securityContext") or {}
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            r.check(non_root is True, f"{cw}: runAsNonRoot must be true")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            r.check(uid is None or uid != 0, f"{cw}: runAsUser 0")
            r.check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem must be true")
            r.check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation must be false")
            r.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cw}: capabilities must drop ALL")
            r.check(not (sc.get("capabilities") or {}).get("add"), f"{cw}: no capabilities may be added")
            r.check(not sc.get("privileged"), f"{cw}: privileged")
            svc = service_of(c)
            if svc:
                r.check(c["command"][0] == BIN_PREFIX + svc, f"{cw}: command must be {BIN_PREFIX}{svc}")
                r.check(f"target/release/{svc}" in dockerfile and f"mosharekat-{svc}" in dockerfile,
                        f"{cw}: deploy/Dockerfile does not build and copy {svc}")
                env, problems = container_env(c, ns, idx["configmaps"])
                r.check(not problems, f"{cw}: {problems}")
                r.check("DATABASE_URL" in env, f"{cw}: DATABASE_URL is not set (the overlay sets it)")

    for d in by_kind.get("Deployment", []):
        where = ref(d)
        ns = d["metadata"].get("namespace", "")
        spec = pod_spec(d)
        pod_labels = d["spec"]["template"]["metadata"].get("labels") or {}
        r.check(labels_match(d["spec"]["selector"], pod_labels), f"{where}: selector does not select its own pods")
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of"):
            r.check(k in pod_labels, f"{where}: pod template lacks label {k}")

        containers = spec.get("containers", [])
        svc = next((s for s in map(service_of, containers) if s), None)

        # SQLite: exactly one replica, replaced not rolled, on a volume, nothing scaling it.
        sqlite = False
        if svc:
            main = next(c for c in containers if service_of(c) == svc)
            env, _ = container_env(main, ns, idx["configmaps"])
            url = env.get("DATABASE_URL")
            sqlite = isinstance(url, str) and url.startswith("sqlite:")
        hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
                if h["metadata"].get("namespace", "") == ns
                and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == d["metadata"]["name"]]
        # The replica count: spec.replicas, or, left out for its HPA to own, the HPA's
        # minimum (the controller raises a Deployment to it even without metrics).
        replicas = d["spec"].get("replicas")
        if replicas is None:
            replicas = min((h["spec"].get("minReplicas", 1) for h in hpas), default=1)
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", [])
                if p["metadata"].get("namespace", "") == ns and labels_match(p["spec"].get("selector"), pod_labels)]
        if sqlite:
            r.check(replicas == 1, f"{where}: SQLite has one writer: replicas must be 1, got {replicas}")
            r.check((d["spec"].get("strategy") or {}).get("type") == "Recreate",
                    f"{where}: SQLite Deployment must use strategy Recreate")
            r.check(not hpas, f"{where}: SQLite Deployment must not be autoscaled")
            path = url[len("sqlite:"):].lstrip("/")
            mounts = [m for m in main.get("volumeMounts") or []
                      if path.startswith(m["mountPath"].strip("/") + "/")]
            vols = {v["name"]: v for v in spec.get("volumes") or []}
            r.check(any("persistentVolumeClaim" in vols.get(m["name"], {}) for m in mounts),
                    f"{where}: SQLite file {url} is not on a PersistentVolumeClaim mount")
        else:
            r.check(replicas >= 2, f"{where}: replicas must be >= 2 (only single SQLite writers may have 1), got {replicas}")
            r.check(bool(pdbs), f"{where}: no PodDisruptionBudget selects it")
            r.check(len(hpas) <= 1, f"{where}: more than one HPA scales it")
            for h in hpas:
                r.check(h["spec"].get("minReplicas", 1) >= 2, f"{ref(h)}: minReplicas must be >= 2")
                r.check(h["spec"].get("minReplicas", 1) <= replicas <= h["spec"]["maxReplicas"],
                        f"{where}: replicas {replicas} outside its HPA's range")
        for p in pdbs:
            r.check("maxUnavailable" in p["spec"] or "minAvailable" in p["spec"], f"{ref(p)}: no budget")

        # A NetworkPolicy of its own (beyond the namespace-wide deny) that governs ingress.
        own = [p for p in by_kind.get("NetworkPolicy", [])
               if p["metadata"].get("namespace", "") == ns and (p["spec"].get("podSelector") or {})
               and labels_match(p["spec"]["podSelector"], pod_labels)
               and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])]
        r.check(bool(own), f"{where}: no NetworkPolicy selects its pods for ingress")

        for c in containers:
            cw = f"{where} container {c['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                r.check(bool(c.get(probe)), f"{cw}: {probe} missing")
            if service_of(c):
                s = service_of(c)
                grpc_port = next((p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "grpc"), None)
                r.check(grpc_port is not None, f"{cw}: no container port named grpc")
                tenv, _ = container_env(c, ns, idx["configmaps"])
                tls_on = isinstance(tenv.get("TLS_CERT"), str)
                # With TLS on, the probes (which cannot speak TLS) use the plaintext health port.
                probe_port = grpc_port
                if tls_on:
                    probe_port = next((p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "health"), None)
                    listen = tenv.get("HEALTH_LISTEN")
                    r.check(probe_port is not None, f"{cw}: TLS is on, but no container port named health")
                    r.check(isinstance(listen, str) and listen.rsplit(":", 1)[-1] == str(probe_port),
                            f"{cw}: HEALTH_LISTEN {listen!r} is not the health port {probe_port}")
                    for var in ("TLS_KEY", "TLS_CA"):
                        r.check(isinstance(tenv.get(var), str), f"{cw}: TLS_CERT without {var}")
                    for var in ("TLS_CERT", "TLS_KEY", "TLS_CA"):
                        if isinstance(tenv.get(var), str):
                            r.check(mounted_secret(spec, c, tenv[var]) is not None,
                                    f"{cw}: {var} {tenv[var]} is not on a mounted secret")
                    for var in PEER_URLS:
                        if tenv.get("MTLS") == "true" and isinstance(tenv.get(var), str):
                            r.check(tenv[var].startswith("https://"), f"{cw}: MTLS is on, {var} must be https://")
                if require_tls:
                    r.check(tls_on and tenv.get("MTLS") == "true",
                            f"{cw}: TLS and mutual TLS must be on (TLS_CERT, MTLS=true)")
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    pr = c.get(probe)
                    if pr is None and probe == "startupProbe":
                        continue
                    g = (pr or {}).get("grpc")
                    if not r.check(bool(g), f"{cw}: {probe} must be a native gRPC probe"):
                        continue
                    r.check(g.get("port") == probe_port,
                            f"{cw}: {probe} port {g.get('port')} is not the {'health' if tls_on else 'gRPC'} port")
                    if probe != "livenessProbe":
                        r.check(g.get("service") == GRPC_SERVICE[s],
                                f"{cw}: {probe} should ask for {GRPC_SERVICE[s]}")
                # The grace period covers preStop + drain delay + in-flight grace.
                env, _ = container_env(c, ns, idx["configmaps"])
                try:
                    drain = duration_seconds(env.get("SHUTDOWN_DRAIN_DELAY", "1s"))
                    grace = duration_seconds(env.get("SHUTDOWN_GRACE", "20s"))
                except ValueError as e:
                    r.check(False, f"{cw}: {e}")
                    continue
                pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
                tgps = spec.get("terminationGracePeriodSeconds", 30)
                r.check(tgps >= pre + drain + grace,
                        f"{cw}: terminationGracePeriodSeconds {tgps} < preStop {pre} + drain {drain} + grace {grace}")
                # A headless Service for client-side balancing, and a migration Job.
                svcs = [x for x in by_kind.get("Service", [])
                        if x["metadata"].get("namespace", "") == ns and x["metadata"]["name"] == s]
                r.check(bool(svcs) and svcs[0]["spec"].get("clusterIP") == "None"
                        and labels_match({"matchLabels": svcs[0]["spec"].get("selector") or {}}, pod_labels),
                        f"{cw}: needs a headless Service named {s} selecting its pods")
                job = migrate_jobs.get((ns, s))
                if r.check(job is not None, f"{cw}: no Job runs `{s} migrate` in {ns}"):
                    jc = next(x for x in pod_spec(job)["containers"] if service_of(x) == s)
                    jenv, _ = container_env(jc, ns, idx["configmaps"])
                    r.check(jenv.get("DATABASE_URL") == env.get("DATABASE_URL"),
                            f"{ref(job)}: DATABASE_URL differs from the Deployment's")
                    r.check(not labels_match(d["spec"]["selector"], pod_spec_labels(job)),
                            f"{ref(job)}: its pods would be counted as {where}'s (selector overlap)")
    return r.finish("policy")


def pod_spec_labels(d: dict) -> dict:
    return d["spec"]["template"]["metadata"].get("labels") or {}


# ---------------------------------------------------------------------------- drift


def help_text(bin_dir: Path, binary: str) -> str:
    # A clean environment: clap prints the current value of each variable in the help.
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    out = subprocess.run([str(bin_dir / binary), "--help"], capture_output=True, text=True, env=env,
                         timeout=30, check=True)
    return out.stdout


def parse_help(text: str) -> dict:
    env = set(re.findall(r"\[env: ([A-Z][A-Z0-9_]*)=", text))
    ports = {}
    for flag, key in (("--listen", "grpc"), ("--metrics-listen", "metrics"), ("--health-listen", "health")):
        m = re.search(re.escape(flag) + r" <[A-Z_]+>\s*\n\s*(.*?)\n\s*\n", text, re.S)
        block = m.group(1) if m else ""
        ports[key] = {s: int(p) for s, p in re.findall(r"\b(registry|referral|meeting) (\d+)", block)}
    commands = set()
    m = re.search(r"Commands:\n(.*?)\n\n", text, re.S)
    if m:
        commands = {line.split()[0] for line in m.group(1).splitlines() if line.strip()}
    return {"env": env, "ports": ports, "commands": commands}


def cmd_drift(rendered: str, bin_dir: Path) -> int:
    r = Report()
    helps = {}
    for b in SERVICES:
        helps[b] = parse_help(help_text(bin_dir, b))
        h = helps[b]
        r.check(bool(h["env"]), f"{b} --help documents no environment variables")
        r.check(all(set(h["ports"][k]) == set(SERVICES) for k in ("grpc", "metrics", "health")),
                f"{b} --help does not give the default ports of every service")
    docs = load(rendered)
    idx = index(docs)
    seen = 0
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        ns = d["metadata"].get("namespace", "")
        for c in pod_spec(d).get("containers", []) + pod_spec(d).get("initContainers", []):
            svc = service_of(c)
            if not svc:
                continue
            seen += 1
            h = helps[svc]
            cw = f"{ref(d)} container {c['name']} ({svc})"
            args = c.get("args") or []
            r.check(not args or args[0] in h["commands"], f"{cw}: `{svc} {args[0] if args else ''}` is not a command")
            env, problems = container_env(c, ns, idx["configmaps"])
            r.check(not problems, f"{cw}: {problems}")
            for name in sorted(env):
                if name.startswith("OTEL_"):
                    continue
                r.check(name in h["env"], f"{cw}: {name} is not an environment variable of `{svc} --help`")
            grpc, metrics = h["ports"]["grpc"].get(svc), h["ports"]["metrics"].get(svc)
            health = h["ports"]["health"].get(svc)
            for p in c.get("ports") or []:
                want = {"grpc": grpc, "metrics": metrics, "health": health}.get(p.get("name"))
                r.check(want is not None and p["containerPort"] == want,
                        f"{cw}: port {p.get('name')}={p['containerPort']}, {svc}'s default is grpc {grpc}, "
                        f"metrics {metrics}, health {health}")
            for var, want in (("LISTEN_ADDR", grpc), ("METRICS_ADDR", metrics), ("HEALTH_LISTEN", health)):
                if isinstance(env.get(var), str):
                    r.check(env[var].rsplit(":", 1)[-1] == str(want), f"{cw}: {var}={env[var]} but the port is {want}")
            # With TLS on, health answers in plaintext on its own port only.
            probe_port = health if isinstance(env.get("TLS_CERT"), str) else grpc
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                g = (c.get(probe) or {}).get("grpc")
                if g:
                    r.check(g.get("port") == probe_port, f"{cw}: {probe} port {g.get('port')} is not {probe_port}")
            for var, peer in PEER_URLS.items():
                if isinstance(env.get(var), str):
                    m = re.match(r"^https?://([^:/]+):(\d+)/?$", env[var])
                    r.check(bool(m) and m.group(2) == str(h["ports"]["grpc"].get(peer)),
                            f"{cw}: {var}={env[var]} is not {peer}'s port {h['ports']['grpc'].get(peer)}")
                    if m:
                        host = m.group(1).split(".")[0]
                        r.check(any(x["kind"] == "Service" and x["metadata"]["name"] == host
                                    and x["metadata"].get("namespace", "") == ns for x in docs),
                                f"{cw}: {var} names {host}, which is no Service in {ns}")
    r.check(seen > 0, "no service container found in the rendered output")
    return r.finish("drift")


def main(argv: list[str]) -> int:
    repo_root = Path(__file__).resolve().parent.parent
    if len(argv) >= 4 and argv[0] == "split":
        return cmd_split(argv[1], argv[2], argv[3])
    if len(argv) in (2, 3) and argv[0] == "crds":
        return cmd_crds(argv[1], argv[2] if len(argv) == 3 else None)
    if len(argv) in (2, 3) and argv[0] == "policy" and argv[2:] in ([], ["--require-tls"]):
        return cmd_policy(argv[1], repo_root, require_tls=argv[2:] == ["--require-tls"])
    if len(argv) == 3 and argv[0] == "drift":
        return cmd_drift(argv[1], Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
