#!/usr/bin/env bash
# Build the cleaner image and run it, read-only, against the emulator on this host.
#
#   deploy/smoke/image-smoke.sh
#
# Needs podman (apt-get install podman buildah runc mmdebstrap) and the project venv
# (.venv, or set PYTHON). Works offline: the base image is built from Debian packages with
# mmdebstrap (registries are not needed), and the wheels are built on the host and handed
# to the Dockerfile (WHEELHOUSE), so nothing is downloaded inside the build.
#
# Checks, in order:
#   1. the image builds (hadolint runs in tests/packaging, not here);
#   2. `cleaner run --once` in a --read-only container, key from a mounted secret file,
#      deletes exactly the expired ended batches and cancels-then-deletes the expired
#      running ones (counted from its JSON `batch_deleted` lines), exit code 0;
#   3. `cleaner run` (the default CMD) in a --read-only container serves /livez, /readyz
#      and /metrics, the in-image healthcheck passes, and SIGTERM stops it with exit 0
#      within 10 s.
# Exit 0 when every check passed. Not part of `python -m tests` (it takes minutes).
#
# Environment: BASE_IMAGE (skip the mmdebstrap build and use this one), IMAGE (tag to
# build, default localhost/cleaner:smoke), KEEP=1 (keep the work dir), DEBIAN_MIRROR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
IMAGE="${IMAGE:-localhost/cleaner:smoke}"
BASE_IMAGE="${BASE_IMAGE:-localhost/cleaner-py-base:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="$(mktemp -d)"
PODMAN=(podman --runtime runc)
# Podman schedules HEALTHCHECK through systemd, absent here: no timer, and its complaints
# are filtered (no_systemd); the check is run by hand below (podman healthcheck run).
RUN_OPTS=(--read-only --network host --cap-drop ALL --security-opt no-new-privileges
          --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --health-interval=disable)
EMULATOR_PID=""
DAEMON=""

no_systemd() { grep -v 'systemd connection' >&2 || true; }
say() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() {
    [[ -n "$DAEMON" ]] && "${PODMAN[@]}" rm -f "$DAEMON" >/dev/null 2>&1 || true
    [[ -n "$EMULATOR_PID" ]] && kill "$EMULATOR_PID" 2>/dev/null || true
    [[ "${KEEP:-0}" == 1 ]] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

command -v podman >/dev/null || fail "podman is not installed (apt-get install podman buildah runc mmdebstrap)"
cd "$ROOT"

# --- 1. the base image, the wheels, the image
if ! podman image exists "$BASE_IMAGE"; then
    say "building base image $BASE_IMAGE from Debian packages (mmdebstrap, a few minutes)"
    command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm - "$DEBIAN_MIRROR" | podman import - "$BASE_IMAGE" >/dev/null
fi
say "building wheels on the host into build/wheels"
rm -rf build/wheels
# (pip's stderr goes to a file: a site pip.conf may name find-links dirs that are absent here)
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check . -w build/wheels 2>"$WORK/pip.err" \
    || { cat "$WORK/pip.err" >&2; fail "pip wheel failed"; }
echo "wheels: $(ls build/wheels | wc -l) in build/wheels"
say "building $IMAGE (base $BASE_IMAGE)"
# docker format: the OCI image format has no HEALTHCHECK.
podman build --quiet --isolation=chroot --format docker \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg WHEELHOUSE=build/wheels \
    --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$IMAGE" . >/dev/null
podman image inspect "$IMAGE" --format \
    'image: user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} stopsignal={{.Config.StopSignal}} size={{.Size}}'
podman image inspect "$IMAGE" --format 'healthcheck: {{.HealthCheck.Test}}'

# --- the emulator on the host: 40 expired ended, 6 recent ended, 3 expired running
say "starting the emulator on the host"
"$PYTHON" -m cleaner.emulator --port 0 --api-key smoke-key --cancel-settle 2s \
    --random-seed 7 --seed 40:ended:40d --seed 6:ended:1d --seed 3:in_progress:3h \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/emulator.out" 2>/dev/null && break; sleep 0.1; done
BASE_URL="$(grep -o 'http://[^ ]*' "$WORK/emulator.out")" || fail "the emulator did not start"
echo "emulator: $(cat "$WORK/emulator.out")"

mkdir -p "$WORK/secrets"
printf 'smoke-key' >"$WORK/secrets/ANTHROPIC_API_KEY"
chmod 0755 "$WORK/secrets" && chmod 0644 "$WORK/secrets/ANTHROPIC_API_KEY"
COMMON_ENV=(-e ANTHROPIC_BASE_URL="$BASE_URL" -e CLEANER_SECRETS_DIR=/run/secrets/cleaner
            -e CLEANER_RETENTION=7d -e CLEANER_PROCESSING_RETENTION=1h
            -e CLEANER_WAIT_TIMEOUT=1m -e CLEANER_REQUESTS_PER_MINUTE=6000)
SECRET_MOUNT=(-v "$WORK/secrets:/run/secrets/cleaner:ro")

# --- 2. one cycle, for real
say "cleaner run --once (read-only root filesystem, key from a secret file)"
set +e
"${PODMAN[@]}" run --rm "${RUN_OPTS[@]}" "${SECRET_MOUNT[@]}" "${COMMON_ENV[@]}" \
    -e CLEANER_DRY_RUN=false "$IMAGE" run --once >"$WORK/once.jsonl" 2>"$WORK/once.err"
ONCE_RC=$?
set -e
no_systemd <"$WORK/once.err"
"$PYTHON" - "$WORK/once.jsonl" "$ONCE_RC" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]  # every line is JSON
events = [line["event"] for line in lines]
deleted = [line for line in lines if line["event"] == "batch_deleted"]
by_action = {}
for line in deleted:
    by_action[line["action"]] = by_action.get(line["action"], 0) + 1
summary = next(line for line in lines if line["event"] == "cycle_finished")
print(f"run --once: exit {sys.argv[2]}, {len(lines)} JSON lines, batch_deleted by action {by_action}")
print("cycle_finished:", json.dumps({k: summary[k] for k in ("ok", "seen", "kept", "outcomes", "requests") if k in summary}))
assert sys.argv[2] == "0", "run --once did not exit 0"
assert by_action == {"delete": 40, "cancel": 3}, by_action
assert all(line["confirmation"]["type"] == "message_batch_deleted" for line in deleted)
assert "smoke-key" not in open(sys.argv[1]).read(), "the key leaked into the log"
PY

# --- 3. the daemon: health port, healthcheck, SIGTERM
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
say "cleaner run (default CMD), health port $PORT"
DAEMON="$("${PODMAN[@]}" run -d "${RUN_OPTS[@]}" "${SECRET_MOUNT[@]}" "${COMMON_ENV[@]}" \
    -e CLEANER_DRY_RUN=true -e CLEANER_HTTP_PORT="$PORT" -e CLEANER_SCHEDULE=1m "$IMAGE" \
    2>"$WORK/daemon.err")" || { cat "$WORK/daemon.err" >&2; fail "the daemon did not start"; }
no_systemd <"$WORK/daemon.err"
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
echo "livez:  $(curl -sS -w ' %{http_code}' "http://127.0.0.1:$PORT/livez" | tr -d '\n')"
echo "readyz: $(curl -sS -w ' %{http_code}' "http://127.0.0.1:$PORT/readyz" | tr -d '\n')"
curl -fsS "http://127.0.0.1:$PORT/livez" >/dev/null || fail "/livez is not 200"
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || fail "/readyz is not 200"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics is not 200"
"$PYTHON" - "$WORK/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def value(name, **labels):
    return next(s.value for s in families[name].samples if s.labels == labels and s.name.startswith(name))
print(f"metrics: {len(families)} families; cycles ok={value('cleaner_cycles', outcome='ok'):g}, "
      f"list 200s={value('cleaner_api_requests', endpoint='list', status='200'):g}, "
      f"seen ended={value('cleaner_batches_seen', status='ended'):g}, dry_run={value('cleaner_dry_run'):g}")
assert all(name.startswith("cleaner_") for name in families)
PY
"${PODMAN[@]}" healthcheck run "$DAEMON" && echo "image HEALTHCHECK: healthy" \
    || fail "the image's HEALTHCHECK failed"
"${PODMAN[@]}" exec "$DAEMON" python -m cleaner.healthcheck || fail "the healthcheck module failed"
say "podman stop (SIGTERM)"
STARTED=$(date +%s.%N)
"${PODMAN[@]}" stop --time 30 "$DAEMON" >/dev/null 2>"$WORK/stop.err"
no_systemd <"$WORK/stop.err"
STOP_S=$(echo "$(date +%s.%N) - $STARTED" | bc)
DAEMON_RC="$("${PODMAN[@]}" inspect "$DAEMON" --format '{{.State.ExitCode}}')"
"${PODMAN[@]}" logs "$DAEMON" 2>&1 | grep -c . | sed 's/^/daemon: JSON lines logged: /'
"${PODMAN[@]}" logs "$DAEMON" 2>&1 | grep -E '"(shutdown_requested|daemon_stopped)"' | cut -c1-160
printf 'daemon: exit %s after SIGTERM, stopped in %.1fs\n' "$DAEMON_RC" "$STOP_S"
[[ "$DAEMON_RC" == 0 ]] || fail "the daemon exited $DAEMON_RC on SIGTERM"
(( $(echo "$STOP_S < 10" | bc) )) || fail "the daemon took ${STOP_S}s to stop"
say "image smoke test passed"
