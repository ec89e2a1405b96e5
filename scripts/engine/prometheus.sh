#!/usr/bin/env bash
# Prometheus and promtool for the monitoring image and for `make lint` / `make test-unit`.
# Debian packages Prometheus (`prometheus`, which brings `promtool`: Go binaries that need only
# libc), so the image is built offline from the host's binaries, like the wheelhouse.
#
#   scripts/engine/prometheus.sh promtool   print the path of a promtool (installing it if needed)
#   scripts/engine/prometheus.sh stage      copy prometheus, promtool and the web UI's assets
#                                           into monitoring/prometheus/.stage/ (gitignored),
#                                           inside the image's build context
#
# Where the binaries come from: PROMETHEUS_BIN_DIR if set (e.g. an unpacked release tarball
# from prometheus.io on a machine without apt), else `prometheus`/`promtool` on PATH, else
# `apt-get install prometheus` (root on Debian; the package's daemon is not started here).
#
# Env: PROMETHEUS_BIN_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STAGE="$ENGINE_REPO_ROOT/monitoring/prometheus/.stage"

find_bin() {
    local name=$1
    if [ -n "${PROMETHEUS_BIN_DIR:-}" ]; then
        [ -x "$PROMETHEUS_BIN_DIR/$name" ] || die "no $name in PROMETHEUS_BIN_DIR=$PROMETHEUS_BIN_DIR"
        echo "$PROMETHEUS_BIN_DIR/$name"
        return
    fi
    command -v "$name" 2>/dev/null || return 1
}

ensure_installed() {
    find_bin prometheus >/dev/null && find_bin promtool >/dev/null && return
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        || die "no prometheus/promtool: install Debian's 'prometheus' package, or set PROMETHEUS_BIN_DIR to an unpacked Prometheus 2.x release"
    log "apt-get install prometheus (prometheus + promtool)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    # policy-rc.d or not, no init system runs the packaged daemon on a machine like this one.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
    find_bin prometheus >/dev/null && find_bin promtool >/dev/null || die "prometheus installed but not found on PATH"
}

cmd_stage() {
    local t0; t0=$(now_s)
    ensure_installed
    local prom promtool; prom=$(find_bin prometheus); promtool=$(find_bin promtool)
    rm -rf "$STAGE.tmp"
    mkdir -p "$STAGE.tmp/bin" "$STAGE.tmp/web"
    install -m 0755 "$prom" "$promtool" "$STAGE.tmp/bin/"
    # Debian's build serves the UI from files (--web.local-assets, symlinks into
    # /usr/share/javascript: copied as files); a release build embeds them (nothing to copy).
    if [ -d /usr/share/prometheus/web ] && [ -z "${PROMETHEUS_BIN_DIR:-}" ]; then
        cp -rL /usr/share/prometheus/web/. "$STAGE.tmp/web/"
        # The UI loads moment-timezone-with-data.min.js; the raw tz data beside it is 200 MB.
        rm -rf "$STAGE.tmp/web/static/moment-timezone/data"
    fi
    rm -rf "$STAGE"
    mv "$STAGE.tmp" "$STAGE"
    log "staged $("$STAGE/bin/prometheus" --version 2>&1 | head -n1) in $STAGE after $(elapsed "$t0")s"
}

case "${1:-}" in
    promtool) ensure_installed; find_bin promtool ;;
    stage) cmd_stage ;;
    *) die "usage: $0 promtool|stage" ;;
esac
