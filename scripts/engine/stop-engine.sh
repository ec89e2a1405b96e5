#!/usr/bin/env bash
# Stop the dockerd that ensure-engine.sh started (by the PID it recorded), and nothing else.
# An engine these scripts did not start (a developer's, a CI runner's) is left alone.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ ! -f "$ENGINE_PID_FILE" ]; then
    log "no dockerd started by these scripts (no $ENGINE_PID_FILE); nothing to stop"
    exit 0
fi
pid=$(cat "$ENGINE_PID_FILE")
if ! kill -0 "$pid" 2>/dev/null; then
    log "dockerd pid $pid is gone already"
    rm -f "$ENGINE_PID_FILE"
    exit 0
fi
# Make sure the PID still is a dockerd (PIDs get reused).
if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
    log "pid $pid is no longer a dockerd; not killing it"
    rm -f "$ENGINE_PID_FILE"
    exit 0
fi
log "stopping dockerd pid $pid"
kill -TERM "$pid"
deadline=$(( $(date +%s) + ${ENGINE_STOP_TIMEOUT_S:-30} ))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "dockerd pid $pid still alive after ${ENGINE_STOP_TIMEOUT_S:-30}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
    fi
    sleep 0.2
done
rm -f "$ENGINE_PID_FILE"
log "dockerd stopped"
