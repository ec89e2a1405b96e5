#!/usr/bin/env bash
# Make sure the base image named by BASE_IMAGE exists in the engine.
#
# - Present already: nothing to do.
# - Otherwise try `docker pull` once (a normal developer machine with a registry), unless
#   BASE_IMAGE_PULL=0 or the name is our local one.
# - Otherwise (no registry, our CI kind): debootstrap --variant=minbase bookworm with what the
#   services need at run time (python3 = 3.11 on bookworm, python3-venv, libgmp10 for fastecdsa,
#   ca-certificates), trimmed, and `docker import` it as BASE_IMAGE. The rootfs tarball is
#   cached under .engine/base/ (gitignored), so a second run is an import of a few seconds.
#
# Env: BASE_IMAGE (chorus-base:bookworm), BASE_SUITE (bookworm), BASE_MIRROR (from apt sources,
#      else http://deb.debian.org/debian), BASE_IMAGE_PULL (1).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BASE_IMAGE="${BASE_IMAGE:-chorus-base:bookworm}"
BASE_SUITE="${BASE_SUITE:-bookworm}"
BASE_PACKAGES="python3,python3-venv,libgmp10,ca-certificates"
t0=$(now_s)

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE present"
    exit 0
fi

if [ "${BASE_IMAGE_PULL:-1}" = 1 ] && [[ "$BASE_IMAGE" != chorus-base:* ]]; then
    log "trying docker pull $BASE_IMAGE"
    if timeout 120 docker pull "$BASE_IMAGE" >&2; then
        log "pulled $BASE_IMAGE in $(elapsed "$t0")s"
        exit 0
    fi
    log "cannot pull $BASE_IMAGE; building it locally with debootstrap"
fi

cache_dir="$ENGINE_STATE_DIR/base"
key=$(printf '%s|%s|v1' "$BASE_SUITE" "$BASE_PACKAGES" | sha256sum | cut -c1-12)
tarball="$cache_dir/rootfs-$BASE_SUITE-$key.tar"
mkdir -p "$cache_dir"

if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || die "building $BASE_IMAGE needs root (debootstrap); or set BASE_IMAGE to an image you have"
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "apt-get install debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
    fi
    mirror="${BASE_MIRROR:-}"
    if [ -z "$mirror" ]; then
        mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
                 | grep -v security | head -n1 | awk '{ print ($1 == "deb") ? $2 : $2 }' || true)
        [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    fi
    rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs" "$tarball.tmp"' EXIT
    log "debootstrap --variant=minbase --include=$BASE_PACKAGES $BASE_SUITE ($mirror)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 \
        || { tail -n 30 "$cache_dir/debootstrap.log" >&2; die "debootstrap failed"; }
    # Trim what a runtime image never reads.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
           "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/var/cache/debconf/*-old
    find "$rootfs"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
    log "rootfs cached at $tarball ($(du -h "$tarball" | cut -f1)) after $(elapsed "$t0")s"
else
    log "using cached rootfs $tarball"
fi

docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap minbase $BASE_SUITE + $BASE_PACKAGES" \
    "$tarball" "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{ printf "%.0f MB", $1/1e6 }')) in $(elapsed "$t0")s"
