#!/usr/bin/env bash
# Alertmanager and amtool for the alerting image and for `make lint` / `make test-unit`.
# Debian packages Alertmanager 0.25 (`prometheus-alertmanager`: the daemon as
# /usr/bin/prometheus-alertmanager, and amtool; Go binaries that need only libc), so the image
# is built offline from the host's binaries, like Prometheus (prometheus.sh).
#
#   scripts/engine/alertmanager.sh amtool        print the path of amtool (installing it if needed)
#   scripts/engine/alertmanager.sh alertmanager  print the path of the alertmanager daemon
#   scripts/engine/alertmanager.sh stage         copy alertmanager, amtool and the notification
#                                                templates into monitoring/alertmanager/.stage/
#                                                (gitignored), inside the image's build context
#
# Where the binaries come from: ALERTMANAGER_BIN_DIR if set (an unpacked release tarball from
# prometheus.io: `alertmanager` and `amtool`), else the Debian package's binaries on PATH,
# else `apt-get install prometheus-alertmanager` (root on Debian; its daemon is not started).
#
# Env: ALERTMANAGER_BIN_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE="$ENGINE_REPO_ROOT/monitoring/alertmanager/.stage"

find_bin() {
    local name=$1
    if [ -n "${ALERTMANAGER_BIN_DIR:-}" ]; then
        [ -x "$ALERTMANAGER_BIN_DIR/$name" ] || die "no $name in ALERTMANAGER_BIN_DIR=$ALERTMANAGER_BIN_DIR"
        echo "$ALERTMANAGER_BIN_DIR/$name"
        return
    fi
    case "$name" in
        alertmanager) command -v prometheus-alertmanager 2>/dev/null || command -v alertmanager 2>/dev/null || return 1 ;;
        *) command -v "$name" 2>/dev/null || return 1 ;;
    esac
}

ensure_installed() {
    find_bin alertmanager >/dev/null && find_bin amtool >/dev/null && return
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        || die "no alertmanager/amtool: install Debian's 'prometheus-alertmanager' package, or set ALERTMANAGER_BIN_DIR to an unpacked Alertmanager 0.25 release"
    log "apt-get install prometheus-alertmanager (alertmanager + amtool)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >&2
    find_bin alertmanager >/dev/null && find_bin amtool >/dev/null || die "prometheus-alertmanager installed but not found on PATH"
}

cmd_stage() {
    local t0; t0=$(now_s)
    ensure_installed
    rm -rf "$STAGE.tmp"
    mkdir -p "$STAGE.tmp/bin" "$STAGE.tmp/share"
    install -m 0755 "$(find_bin alertmanager)" "$STAGE.tmp/bin/alertmanager"
    install -m 0755 "$(find_bin amtool)" "$STAGE.tmp/bin/amtool"
    # Debian's daemon reads its templates (and a placeholder UI) from /usr/share; a release
    # build embeds them (nothing to copy).
    if [ -d /usr/share/prometheus/alertmanager ] && [ -z "${ALERTMANAGER_BIN_DIR:-}" ]; then
        cp -rL /usr/share/prometheus/alertmanager/. "$STAGE.tmp/share/"
    fi
    rm -rf "$STAGE"
    mv "$STAGE.tmp" "$STAGE"
    log "staged $("$STAGE/bin/alertmanager" --version 2>&1 | head -n1) in $STAGE after $(elapsed "$t0")s"
}

case "${1:-}" in
    amtool) ensure_installed; find_bin amtool ;;
    alertmanager) ensure_installed; find_bin alertmanager ;;
    stage) cmd_stage ;;
    *) die "usage: $0 amtool|alertmanager|stage" ;;
esac
