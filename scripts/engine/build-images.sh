#!/usr/bin/env bash
# Build the three service images with the legacy builder (BuildKit needs buildx, which this
# kind of machine lacks) from the repository root; the context is only the wheelhouse (see
# .dockerignore). Run wheelhouse.sh first.
#
# Env: BASE_IMAGE (chorus-base:bookworm), IMAGE_TAG (test),
#      SERVICES ("whoosh agent hmmm-monitor prometheus alertmanager").
# Images: whoosh:$IMAGE_TAG, chorus-agent:$IMAGE_TAG, hmmm-monitor:$IMAGE_TAG,
# chorus-prometheus:$IMAGE_TAG (monitoring/prometheus; its binaries staged by prometheus.sh)
# and chorus-alertmanager:$IMAGE_TAG (monitoring/alertmanager; staged by alertmanager.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$ENGINE_REPO_ROOT"
BASE_IMAGE="${BASE_IMAGE:-chorus-base:bookworm}"
TAG="${IMAGE_TAG:-test}"
SERVICES="${SERVICES:-whoosh agent hmmm-monitor prometheus alertmanager}"
case " $SERVICES " in
    *" whoosh "*|*" agent "*|*" hmmm-monitor "*)
        ls .wheelhouse/*.whl >/dev/null 2>&1 || die "no wheelhouse: run scripts/engine/wheelhouse.sh first" ;;
esac
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "no base image $BASE_IMAGE: run scripts/engine/base-image.sh"

image_name() {
    case "$1" in
        agent) echo "chorus-agent:$TAG" ;;
        prometheus) echo "chorus-prometheus:$TAG" ;;
        alertmanager) echo "chorus-alertmanager:$TAG" ;;
        *) echo "$1:$TAG" ;;
    esac
}

# The services build from the repository root (the context is the wheelhouse); Prometheus
# and Alertmanager from monitoring/<name>, after their binaries are staged there.
build_args() {
    case "$1" in
        prometheus)
            "$(dirname "${BASH_SOURCE[0]}")/prometheus.sh" stage
            echo "-f monitoring/prometheus/Dockerfile monitoring/prometheus" ;;
        alertmanager)
            "$(dirname "${BASH_SOURCE[0]}")/alertmanager.sh" stage
            echo "-f monitoring/alertmanager/Dockerfile monitoring/alertmanager" ;;
        *) echo "-f services/$1/Dockerfile ." ;;
    esac
}

for svc in $SERVICES; do
    t0=$(now_s)
    img=$(image_name "$svc")
    context=$(build_args "$svc")
    log "docker build $img (base $BASE_IMAGE)"
    # shellcheck disable=SC2086  # $context is "-f <Dockerfile> <dir>"
    DOCKER_BUILDKIT=0 docker build --quiet \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --label org.opencontainers.image.source=chorus-mesh \
        --label org.opencontainers.image.revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        -t "$img" $context >/dev/null 2> >(grep -vE "DEPRECATED: The legacy builder|BuildKit is currently disabled|environment-variable.|^$" >&2)
    log "built $img in $(elapsed "$t0")s ($(docker image inspect -f '{{.Size}}' "$img" | awk '{ printf "%.0f MB", $1/1e6 }'))"
done
