#!/usr/bin/env bash
# Offline checks of the Kubernetes deployment: no cluster, no network (except pip, once,
# for tools that are missing).
#
#   deploy/check.sh [BIN_DIR]     BIN_DIR: the built service binaries (default target/release)
#
# For every overlay under deploy/k8s/overlays:
#   1. render it with `kubectl kustomize`
#   2. validate the built-in kinds with `kubernetes-validate --strict` for the oldest
#      Kubernetes we support; the custom resources (CloudNativePG Cluster, cert-manager
#      Issuer and Certificate) are split off and checked by deploy/policy.py
#      (kubernetes-validate only warns on kinds it has no schema for, so any such warning
#      fails this step)
#   3. checkov on the rendered output: every finding fails, unless the manifest skips it
#      with an annotation that gives the reason
#   4. yamllint of the sources (deploy/k8s) with deploy/.yamllint.yaml
#   5. deploy/policy.py: probes, resources, security context, PDB, NetworkPolicy, replicas,
#      grace period, headless Service, migration Job, no inlined secrets; TLS (probes on
#      the plaintext health port, certificate files from a mounted secret), and in prod
#      TLS with mutual TLS on every service
#   6. drift against the binaries: env var names and ports of the manifests vs each
#      binary's --help (skipped, saying so, when the binaries are not built)
set -euo pipefail

# A directory given on the command line is taken relative to where the script was started.
BIN_DIR=${1:-}
if [ -n "$BIN_DIR" ] && [ -d "$BIN_DIR" ]; then BIN_DIR=$(cd "$BIN_DIR" && pwd); fi
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/release}
# The oldest Kubernetes these manifests support: lifecycle.preStop.sleep is on by default
# from 1.30 (beta; GA in 1.34).
K8S_VERSION=1.30.0
TOOLS_VENV=${MOSHAREKAT_TOOLS_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mosharekat-deploy-tools}

started=$SECONDS
step() { printf '\n=== %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

step "tools"
command -v kubectl >/dev/null || fail "kubectl is not installed"
PY=python3
missing=()
for t in kubernetes-validate checkov yamllint; do
  command -v "$t" >/dev/null || missing+=("$t")
done
python3 -c 'import yaml' 2>/dev/null || missing+=(pyyaml)
if [ ${#missing[@]} -gt 0 ]; then
  # A virtualenv of their own: checkov pins many libraries, which should not change the
  # system Python's.
  if [ -x "$TOOLS_VENV/bin/python" ] || python3 -m venv "$TOOLS_VENV" 2>/dev/null; then
    if ! { [ -x "$TOOLS_VENV/bin/checkov" ] && [ -x "$TOOLS_VENV/bin/kubernetes-validate" ] \
        && [ -x "$TOOLS_VENV/bin/yamllint" ] && "$TOOLS_VENV/bin/python" -c 'import yaml' 2>/dev/null; }; then
      echo "installing ${missing[*]} into $TOOLS_VENV (pip; checkov takes a minute or two)"
      "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate checkov yamllint pyyaml
    fi
    export PATH="$TOOLS_VENV/bin:$PATH"
    PY="$TOOLS_VENV/bin/python"
  else
    echo "installing ${missing[*]} with pip (no venv module)"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate checkov yamllint pyyaml
  fi
fi
kubectl version --client 2>/dev/null | head -n 2
echo "kubernetes-validate $(kubernetes-validate --version), checkov $(checkov --version), $(yamllint --version)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
overlays=()
for d in deploy/k8s/overlays/*/; do
  [ -f "$d/kustomization.yaml" ] && overlays+=("$(basename "$d")")
done
[ ${#overlays[@]} -gt 0 ] || fail "no overlays under deploy/k8s/overlays"

step "1. render: kubectl kustomize (base, ${overlays[*]})"
# The base alone must build too, though only the overlays are deployed.
kubectl kustomize deploy/k8s/base >"$out/base.yaml" || fail "kustomize: base"
for o in "${overlays[@]}"; do
  kubectl kustomize "deploy/k8s/overlays/$o" >"$out/$o.yaml" || fail "kustomize: overlay $o"
  echo "$o: $(grep -c '^kind:' "$out/$o.yaml") objects -> $out/$o.yaml"
done

step "2. schemas: kubernetes-validate --strict -k $K8S_VERSION (CloudNativePG and cert-manager resources checked apart)"
for o in "${overlays[@]}"; do
  echo "-- $o"
  "$PY" deploy/policy.py split "$out/$o.yaml" "$out/$o.core.yaml" "$out/$o.crds.yaml"
  rc=0
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out/$o.core.yaml" >"$out/$o.kv.txt" 2>&1 || rc=$?
  cat "$out/$o.kv.txt"
  [ "$rc" -eq 0 ] || fail "kubernetes-validate: $o"
  ! grep -qE '^(WARN|ERROR|FATAL)' "$out/$o.kv.txt" || fail "kubernetes-validate: $o has objects it could not validate"
  echo "kubernetes-validate: $o valid for Kubernetes $K8S_VERSION (strict)"
  "$PY" deploy/policy.py crds "$out/$o.crds.yaml" "$out/$o.yaml" || fail "custom resources: $o"
done

step "3. checkov --framework kubernetes (skips only by annotation, each with its reason)"
for o in "${overlays[@]}"; do
  echo "-- $o"
  rc=0
  checkov --framework kubernetes --skip-download --compact -o json \
    -f "$out/$o.yaml" >"$out/$o.checkov.json" 2>"$out/$o.checkov.err" || rc=$?
  # Summary, every failure, and every skip with the reason its annotation gives.
  "$PY" - "$out/$o.checkov.json" <<'EOF' || { cat "$out/$o.checkov.err" >&2; fail "checkov: $o"; }
import json, sys
data = json.load(open(sys.argv[1]))
failed = 0
for report in (data if isinstance(data, list) else [data]):
    s, res = report.get("summary", {}), report.get("results", {})
    print(f"checkov: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('skipped', 0)} skipped "
          f"(checkov {s.get('checkov_version', '?')})")
    for c in res.get("failed_checks", []):
        failed += 1
        print(f"  FAILED {c['check_id']} {c['check_name']}: {c['resource']} ({c.get('file_line_range')})")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skipped {c['check_id']} on {c['resource']}: {reason}")
sys.exit(1 if failed else 0)
EOF
  [ "$rc" -eq 0 ] || { cat "$out/$o.checkov.err" >&2; fail "checkov: $o (exit $rc)"; }
done

step "4. yamllint deploy/k8s (deploy/.yamllint.yaml)"
yamllint --strict -c deploy/.yamllint.yaml deploy/k8s || fail "yamllint"
echo "yamllint: clean"

step "5. policy (deploy/policy.py)"
for o in "${overlays[@]}"; do
  echo "-- $o"
  # Production carries confidential case data between services: TLS and mutual TLS.
  tls=()
  [ "$o" = prod ] && tls=(--require-tls)
  "$PY" deploy/policy.py policy "$out/$o.yaml" "${tls[@]}" || fail "policy: $o"
done

step "6. drift: manifests vs the binaries' --help ($BIN_DIR)"
have_bins=1
for b in registry referral meeting; do
  [ -x "$BIN_DIR/$b" ] || have_bins=0
done
if [ "$have_bins" = 1 ]; then
  for o in "${overlays[@]}"; do
    echo "-- $o"
    "$PY" deploy/policy.py drift "$out/$o.yaml" "$(cd "$BIN_DIR" && pwd)" || fail "drift: $o"
  done
else
  echo "SKIPPED: no registry, referral and meeting binaries in $BIN_DIR."
  echo "Build them (cargo build --release --locked -p mosharekat-registry -p mosharekat-referral" \
    "-p mosharekat-meeting) or pass their directory: deploy/check.sh DIR"
fi

step "all deploy checks passed"
