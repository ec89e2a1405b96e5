# shellcheck shell=bash
# Shared by the scripts in scripts/engine/. Sourced, not executed.
set -euo pipefail

ENGINE_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# State of a dockerd that *these scripts* started (PID, log). Gitignored.
ENGINE_STATE_DIR="${ENGINE_STATE_DIR:-$ENGINE_REPO_ROOT/.engine}"
ENGINE_PID_FILE="$ENGINE_STATE_DIR/dockerd.pid"
ENGINE_LOG_FILE="$ENGINE_STATE_DIR/dockerd.log"

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

# `docker info` with a bound: a wedged daemon must not hang the build.
docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

# The compose command available: "docker compose" (v2 plugin) or "docker-compose".
compose_cmd() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo "docker-compose"
    else
        return 1
    fi
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }
