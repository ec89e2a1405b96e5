#!/usr/bin/env bash
# Fill .wheelhouse/ (gitignored) with every wheel the service images install, so that
# `docker build` needs no network at all (TLS interception blocks pip inside builds here, and
# air-gapped users need the same).
#
#   .wheelhouse/requirements-<package>.txt   the lock (uv.lock) exported per service package
#   .wheelhouse/*.whl                        third-party wheels (pip wheel: downloads wheels, and
#                                            builds sdists such as fastecdsa, which needs gcc +
#                                            libgmp-dev on the host)
#   .wheelhouse/local/*.whl                  meshcommon and the services, from `uv build --wheel`
#
# The requirement files carry no comments, so services with the same dependency set (agent and
# monitor) get byte-identical files and share the image layer that installs them.
#
# Third-party wheels are fetched again only when uv.lock changes (a stamp holds its hash); the
# workspace wheels are rebuilt every run (a few seconds) so images carry the current source.
# Must run with the same Python minor and platform as the images (3.11, linux x86_64/arm64).
#
# Env: WHEELHOUSE_DIR (.wheelhouse), WHEELHOUSE_PYTHON (python3.11 or python3),
#      WHEELHOUSE_PACKAGES ("chorus-agent whoosh hmmm-monitor").
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$ENGINE_REPO_ROOT"
WH="${WHEELHOUSE_DIR:-$ENGINE_REPO_ROOT/.wheelhouse}"
PACKAGES="${WHEELHOUSE_PACKAGES:-chorus-agent whoosh hmmm-monitor}"
t0=$(now_s)
mkdir -p "$WH"

py="${WHEELHOUSE_PYTHON:-}"
if [ -z "$py" ]; then
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            py=$c; break
        fi
    done
fi
[ -n "$py" ] || die "need a Python 3.11 on the host to build cp311 wheels (set WHEELHOUSE_PYTHON)"
"$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip"
UV="${UV:-uv}"
command -v "$UV" >/dev/null 2>&1 || die "need uv (pip install uv, or set UV=/path/to/uv)"

# 1. The lock, exported per service package (no dev deps, no workspace members, no hashes:
#    pip checks versions against the local wheels; the lock itself carries the hashes).
all="$WH/requirements-all.txt.new"
: >"$all"
for pkg in $PACKAGES; do
    "$UV" export --quiet --frozen --no-dev --no-emit-workspace --no-hashes --no-header \
        --no-annotate --package "$pkg" | grep -vE '^\s*(#|$)' >"$WH/requirements-$pkg.txt"
    cat "$WH/requirements-$pkg.txt" >>"$all"
done
sort -u "$all" -o "$all"
mv "$all" "$WH/requirements-all.txt"

# 2. Third-party wheels, only when the lock changed.
stamp="$WH/.stamp-thirdparty"
want=$( (cat uv.lock "$WH/requirements-all.txt"; "$py" -c 'import sys,platform; print(sys.version_info[:2], platform.machine())') | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "third-party wheels up to date ($(ls "$WH"/*.whl 2>/dev/null | wc -l) wheels)"
else
    if ! gcc --version >/dev/null 2>&1 || [ ! -e /usr/include/gmp.h ] && [ ! -e /usr/include/x86_64-linux-gnu/gmp.h ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "apt-get install gcc libgmp-dev (to build fastecdsa)"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libgmp-dev >&2
        else
            log "warning: gcc or gmp.h missing; building fastecdsa may fail"
        fi
    fi
    log "pip wheel -r requirements-all.txt ($py)"
    # --find-links the wheelhouse itself: wheels already there (fastecdsa) are not rebuilt.
    "$py" -m pip wheel --quiet --no-deps --wheel-dir "$WH" --find-links "$WH" \
        -r "$WH/requirements-all.txt" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    echo "$want" >"$stamp"
    log "third-party wheels ready: $(ls "$WH"/*.whl | wc -l) wheels, $(du -sh "$WH" | cut -f1) after $(elapsed "$t0")s"
fi

# 3. The workspace packages' own wheels, always fresh.
rm -rf "$WH/local"
mkdir -p "$WH/local"
# One uv invocation for every workspace member (one build environment, ~3 s).
"$UV" build --quiet --wheel --all-packages --out-dir "$WH/local" >&2
log "wheelhouse ready in $(elapsed "$t0")s: $WH ($(du -sh "$WH" | cut -f1))"
