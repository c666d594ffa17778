#!/usr/bin/env bash
# Build (and smoke-test) the qa image with podman/buildah where no Docker engine or registry is reachable.
#
#   scripts/build-image.sh base    # local Debian bookworm base (python3 + python3-venv) via debootstrap
#   scripts/build-image.sh build   # podman build --isolation=chroot, /opt/wheels mounted as --find-links
#   scripts/build-image.sh smoke   # start the server inside the image (buildah run), curl /readyz
#   scripts/build-image.sh all     # the three in order (default)
#
# Environment: BASE_IMAGE (localhost/base:bookworm), IMAGE (localhost/qa), WHEELS (/opt/wheels),
# REF (build this git revision, e.g. HEAD, instead of the working tree),
# CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt: this machine's CAs, for pip in the build; empty: none),
# MIRROR (http://deb.debian.org/debian), PORT (smoke test, 18000), READY_TIMEOUT (seconds, 300).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/base:bookworm}
IMAGE=${IMAGE:-localhost/qa}
WHEELS=${WHEELS:-/opt/wheels}
REF=${REF:-}
CA_BUNDLE=${CA_BUNDLE-$( [ -f /etc/ssl/certs/ca-certificates.crt ] && echo /etc/ssl/certs/ca-certificates.crt )}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PORT=${PORT:-18000}
READY_TIMEOUT=${READY_TIMEOUT:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() {
  command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y podman buildah debootstrap" >&2; exit 1; }
}

stamp() { date +%s; }

base() {
  need debootstrap
  need podman
  if podman image exists "$BASE_IMAGE"; then
    echo "base image $BASE_IMAGE exists (podman rmi it to rebuild)"
    return
  fi
  local started rootfs
  started=$(stamp)
  rootfs=$(mktemp -d /tmp/qa-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "umount '$rootfs/proc' 2>/dev/null || true; rm -rf '$rootfs'" RETURN
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" apt-get update -qq
  chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates curl
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
  echo "base image $BASE_IMAGE imported in $(($(stamp) - started))s"
}

build() {
  need podman
  local started args=()
  started=$(stamp)
  if [ -d "$WHEELS" ]; then
    # the chroot build cannot see the host's wheel folder unless it is mounted in
    args+=(-v "$WHEELS:/opt/wheels:ro" --build-arg FIND_LINKS=/opt/wheels --build-arg TORCH_INDEX_URL=)
  fi
  if [ -n "$CA_BUNDLE" ]; then
    # HTTPS to PyPI may be intercepted here: let pip in the build trust what this machine trusts
    args+=(-v "$CA_BUNDLE:/etc/ssl/certs/build-ca-bundle.crt:ro" --build-arg CA_BUNDLE=/etc/ssl/certs/build-ca-bundle.crt)
  fi
  local context=$ROOT
  if [ -n "$REF" ]; then
    # a committed revision rather than the working tree (which may hold others' half-done edits)
    context=$(mktemp -d /tmp/qa-context.XXXXXX)
    git -C "$ROOT" archive "$REF" | tar -x -C "$context"
    echo "building $REF ($(git -C "$ROOT" rev-parse --short "$REF")) from $context"
  fi
  # docker format: the OCI format has no HEALTHCHECK
  podman build --isolation=chroot --network=host --format=docker --build-arg BASE_IMAGE="$BASE_IMAGE" \
    "${args[@]}" -t "$IMAGE" "$context"
  [ "$context" = "$ROOT" ] || rm -rf "$context"
  echo "image $IMAGE built in $(($(stamp) - started))s"
  podman image ls "$IMAGE"
}

SMOKE_PID=
SMOKE_CONTAINER=
smoke_cleanup() {
  [ -z "$SMOKE_PID" ] || { kill "$SMOKE_PID" 2>/dev/null || true; wait "$SMOKE_PID" 2>/dev/null || true; }
  [ -z "$SMOKE_CONTAINER" ] || buildah rm "$SMOKE_CONTAINER" >/dev/null
  SMOKE_PID= SMOKE_CONTAINER=
}

smoke() {
  need buildah
  need curl
  local started ready=
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "port $PORT is already in use here; choose another with PORT=..." >&2
    exit 1
  fi
  started=$(stamp)
  trap smoke_cleanup EXIT
  SMOKE_CONTAINER=$(buildah from "$IMAGE")
  echo "runs as: $(buildah run --isolation chroot "$SMOKE_CONTAINER" -- id -un)"
  # chroot isolation shares the host network, so the server listens on this machine's port
  # loopback only: chroot isolation shares the host's network, and the image's default is 0.0.0.0
  buildah run --isolation chroot --env QA_HOST=127.0.0.1 --env QA_PORT="$PORT" "$SMOKE_CONTAINER" -- qa serve >/tmp/qa-smoke.log 2>&1 &
  SMOKE_PID=$!
  for _ in $(seq "$READY_TIMEOUT"); do
    if curl -fs "http://127.0.0.1:$PORT/readyz"; then
      ready=1
      break
    fi
    kill -0 "$SMOKE_PID" 2>/dev/null || break
    sleep 1
  done
  if [ -z "$ready" ]; then
    echo "server did not become ready; log:" >&2
    cat /tmp/qa-smoke.log >&2
    exit 1
  fi
  echo
  echo "ready after $(($(stamp) - started))s"
  curl -fsS -D - -o /dev/null -H "X-Request-ID: smoke-1" "http://127.0.0.1:$PORT/healthz" \
    | grep -i -E "^(x-request-id|server-timing):"
  local answer
  answer=$(curl -fsS -D /tmp/qa-smoke.headers -H "Content-Type: application/json" \
    -d '{"question": "Which trials combine TLR9 agonists with pembrolizumab?"}' \
    "http://127.0.0.1:$PORT/api/ask")
  grep -i -E "^(HTTP/|server-timing:)" /tmp/qa-smoke.headers
  # the answer itself, not just a 200: the seed corpus names SD-101 with pembrolizumab
  if ! printf '%s' "$answer" | grep -q '"abstained":false' || ! printf '%s' "$answer" | grep -q 'SD-101'; then
    echo "unexpected answer to the smoke question: $answer" >&2
    exit 1
  fi
  echo "answer names SD-101 and does not abstain"
  curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E "^qa_(index_passages|model_load_seconds|ready) "
  local check
  check=$(podman image inspect "$IMAGE" --format '{{index .HealthCheck.Test 1}}')
  buildah run --isolation chroot --env QA_PORT="$PORT" "$SMOKE_CONTAINER" -- sh -c "$check"
  echo "the image's HEALTHCHECK passes"
  smoke_cleanup
}

case "${1:-all}" in
  base) base ;;
  build) build ;;
  smoke) smoke ;;
  all) base; build; smoke ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
