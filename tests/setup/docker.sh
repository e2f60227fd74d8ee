#!/usr/bin/env bash
# Test infrastructure for image builds and registry tests, on a machine with no public registry:
#   - a private dockerd (BuildKit on) at unix:///run/union-test/docker.sock,
#   - Debian's docker-registry (CNCF distribution) at http://127.0.0.1:30000, delete enabled,
#   - an offline base image localhost:30000/union/debian-python:bookworm made with debootstrap.
# Idempotent: starts only what is not running, and reuses the cached rootfs and the pushed image.
# Usage: tests/setup/docker.sh [--check-pip]     (stop with tests/setup/docker-stop.sh)
# Needs root. Never touches a system dockerd or its socket.
set -euo pipefail

STATE=/var/lib/union-test
RUN=/run/union-test
CACHE=/var/cache/union-test
SOCK="$RUN/docker.sock"
export DOCKER_HOST="unix://$SOCK"
REGISTRY_ADDR=127.0.0.1:30000
BASE_REPO=union/debian-python
BASE_TAG=bookworm
BASE_IMAGE="localhost:30000/$BASE_REPO:$BASE_TAG"
SUITE=bookworm
DEB_MIRROR=${UNION_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
INCLUDE=python3,python3-venv,python3-pip,ca-certificates
HOST_CA=/etc/ssl/certs/ca-certificates.crt

CHECK_PIP=0
for arg in "$@"; do
  case "$arg" in
    --check-pip) CHECK_PIP=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "docker.sh: unknown argument \`$arg\`" >&2; exit 2 ;;
  esac
done

log() { echo "docker.sh: $*" >&2; }
die() { echo "docker.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts dockerd and writes under $STATE)"

# Prefer the Debian docker CLI if the one in PATH is missing; any recent CLI speaks to dockerd 20.10.
DOCKER=$(command -v docker || true)
[ -n "$DOCKER" ] || DOCKER=/usr/bin/docker

# ---------------------------------------------------------------- packages
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v htpasswd >/dev/null || need+=(apache2-utils)   # registry_auth tests make htpasswd files
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)  # a throwaway TLS server in the register tests
command -v git >/dev/null || need+=(git)          # user projects that are git repositories
# An OS keyring (a Secret Service on a D-Bus session) for the token-cache test.
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$DOCKER" ] || die "no docker CLI found (install docker.io)"

mkdir -p "$STATE" "$RUN" "$CACHE"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- dockerd
engine_ping() { curl -sf --max-time 2 --unix-socket "$SOCK" http://localhost/_ping; }

if engine_ping >/dev/null 2>&1; then
  log "dockerd already answering on $SOCK"
else
  if alive "$RUN/dockerd.pid"; then
    log "dockerd (pid $(cat "$RUN/dockerd.pid")) is starting; waiting"
  else
    rm -f "$RUN/dockerd.pid" "$SOCK"
    if [ -S /var/run/docker.sock ]; then
      log "note: a system dockerd socket exists at /var/run/docker.sock; leaving it alone"
    fi
    cat >"$STATE/daemon.json" <<JSON
{
  "features": { "buildkit": true },
  "log-level": "warn"
}
JSON
    mkdir -p "$STATE/docker" "$RUN/exec"
    log "starting dockerd (log: $STATE/dockerd.log)"
    setsid nohup dockerd \
      --config-file "$STATE/daemon.json" \
      --data-root "$STATE/docker" \
      --exec-root "$RUN/exec" \
      --pidfile "$RUN/dockerd.pid" \
      --host "unix://$SOCK" \
      >>"$STATE/dockerd.log" 2>&1 </dev/null &
  fi
  wait_for 60 dockerd engine_ping || { tail -20 "$STATE/dockerd.log" >&2; die "dockerd did not answer /_ping on $SOCK within 60 s"; }
fi

# ---------------------------------------------------------------- registry
registry_ping() { curl -sf --max-time 2 -o /dev/null "http://$REGISTRY_ADDR/v2/"; }

if registry_ping; then
  log "registry already answering on http://$REGISTRY_ADDR"
else
  if alive "$RUN/registry.pid"; then kill "$(cat "$RUN/registry.pid")" 2>/dev/null || true; sleep 0.5; fi
  mkdir -p "$STATE/registry/data"
  cat >"$STATE/registry/config.yml" <<YAML
version: 0.1
log:
  level: warn
  fields:
    service: union-test-registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  log "starting docker-registry on $REGISTRY_ADDR (log: $STATE/registry.log)"
  setsid nohup docker-registry serve "$STATE/registry/config.yml" >>"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$RUN/registry.pid"
  wait_for 30 registry registry_ping || { tail -20 "$STATE/registry.log" >&2; die "registry did not answer /v2/ on $REGISTRY_ADDR within 30 s"; }
fi

# ---------------------------------------------------------------- base image
# Pip settings the host uses (CA bundle, index URLs) go into the image too, so pip inside a
# container reaches PyPI the way the host does. Test setup only: user ImageSpecs never see this.
pip_conf=$(mktemp)
trap 'rm -f "$pip_conf"' EXIT
{
  echo "[global]"
  echo "cert = /etc/ssl/certs/ca-certificates.crt"
  echo "disable-pip-version-check = true"
  for f in /etc/pip.conf "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    [ -f "$f" ] || continue
    grep -E '^[[:space:]]*(index-url|extra-index-url|trusted-host|timeout)[[:space:]]*=' "$f" || true
  done
  for v in INDEX_URL EXTRA_INDEX_URL TRUSTED_HOST DEFAULT_TIMEOUT; do
    val=$(printenv "PIP_$v" || true)
    [ -n "$val" ] || continue
    key=$(echo "$v" | tr 'A-Z_' 'a-z-'); [ "$key" = default-timeout ] && key=timeout
    echo "$key = $val"
  done
} | awk '!seen[$1]++' >"$pip_conf"

rootfs_key=$(printf '%s\n' "$SUITE" minbase "$INCLUDE" "$DEB_MIRROR" | sha256sum | cut -c1-16)
rootfs_tar="$CACHE/rootfs-$SUITE-minbase-$rootfs_key.tar"
fingerprint=$( { echo "$rootfs_key"; cat "$HOST_CA" "$pip_conf"; } | sha256sum | cut -c1-32)

base_in_registry() {
  curl -sf --max-time 5 -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY_ADDR/v2/$BASE_REPO/manifests/$BASE_TAG"
}
base_label() { "$DOCKER" image inspect -f '{{ index .Config.Labels "union.test.fingerprint" }}' "$BASE_IMAGE" 2>/dev/null || true; }

base_state=reused
if [ "$(base_label)" = "$fingerprint" ] && base_in_registry; then
  log "base image $BASE_IMAGE is up to date"
else
  if [ ! -f "$rootfs_tar" ]; then
    log "debootstrap $SUITE ($INCLUDE), about 70 s; cached as $rootfs_tar"
    work=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
    if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$DEB_MIRROR" >"$work/log" 2>&1; then
      tail -20 "$work/log" >&2; rm -rf "$work"; die "debootstrap failed"
    fi
    rm -rf "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/lib/apt/lists/* "$work/root"/var/log/*.log
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$rootfs_tar"
    rm -rf "$work"
  fi
  if [ "$(base_label)" != "$fingerprint" ]; then
    log "importing $BASE_IMAGE"
    work=$(mktemp -d "$CACHE/import.XXXXXX")
    tar -C "$work" -xf "$rootfs_tar"
    install -m 0644 "$HOST_CA" "$work/etc/ssl/certs/ca-certificates.crt"
    install -m 0644 "$pip_conf" "$work/etc/pip.conf"
    tar --numeric-owner -C "$work" -c . | "$DOCKER" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
      --change "LABEL union.test.fingerprint=$fingerprint" \
      --change 'CMD ["python3"]' \
      - "$BASE_IMAGE" >/dev/null
    rm -rf "$work"
  fi
  "$DOCKER" tag "$BASE_IMAGE" "$BASE_REPO:$BASE_TAG"
  log "pushing $BASE_IMAGE"
  "$DOCKER" push -q "$BASE_IMAGE" >/dev/null
  base_state=built
fi
"$DOCKER" image inspect "$BASE_REPO:$BASE_TAG" >/dev/null 2>&1 || "$DOCKER" tag "$BASE_IMAGE" "$BASE_REPO:$BASE_TAG"

# ---------------------------------------------------------------- optional pip check
if [ "$CHECK_PIP" = 1 ]; then
  log "checking that pip inside $BASE_IMAGE reaches the package index"
  if "$DOCKER" run --rm "$BASE_IMAGE" sh -c 'cd /tmp && python3 -m pip download -q --no-deps six && ls six-*'; then
    log "pip inside containers works"
  else
    die "pip inside $BASE_IMAGE could not download \`six\`"
  fi
fi

echo "union-test: dockerd at $SOCK (BuildKit on), registry at http://$REGISTRY_ADDR, base image $BASE_IMAGE ($base_state); use: export DOCKER_HOST=$DOCKER_HOST"
