#!/usr/bin/env bash
# A multi-node Docker Swarm on one machine: N dockerd engines, each in its own network
# namespace, joined into one Swarm (node1 manager, the others workers). For checking that
# stack.yml works across nodes: real VXLAN overlay traffic between "hosts", placement,
# host-mode published ports per node. Needs root, iproute2, util-linux (unshare), dockerd.
#
#   scripts/engine/multinode.sh up [N]     N nodes (default 3); prints how to reach node1
#   scripts/engine/multinode.sh down       remove everything `up` created (safe to run twice)
#   scripts/engine/multinode.sh env        `export DOCKER_HOST=...` of node1 (for eval)
#   scripts/engine/multinode.sh exec I CMD...   run CMD in node I's network namespace
#   scripts/engine/multinode.sh kill-node I     power node I off: SIGKILL its dockerd,
#                                               containerd, shims and containers at once
#   scripts/engine/multinode.sh start-node I    start node I's dockerd again (it rejoins)
#   scripts/engine/multinode.sh outside         a host outside the Swarm: namespace
#       $PREFIX-outside on the nodes' network ($SUBNET.250) that reaches only the nodes'
#       published ports (MULTINODE_OUTSIDE_PORTS); `exec outside CMD` runs CMD there
#
# Exit status 3 from `up`: this machine cannot create namespaces or engines (not root, no
# iproute2/dockerd, a dockerd that cannot start); everything created is removed again.
#
# Layout:
# - root namespace: bridge $PREFIX-br without an IP (nodes talk only among themselves); one
#   FORWARD ACCEPT rule for it (a root dockerd sets FORWARD to DROP, and bridged traffic
#   crosses it with br_netfilter); veth $PREFIX-vI into namespace $PREFIX-nodeI.
# - node I: eth0 = $SUBNET.I/24 (10.77.0.I), its own dockerd with its own data-root, exec-root,
#   pidfile, socket and config file (per-node deprecated-key-path, else all engines share one
#   identity), everything under .engine/multinode/$PREFIX/nodeI/ (gitignored).
# - `ip netns exec` remounts /sys, which hides the cgroup mounts (dockerd: "Devices cgroup
#   isn't mounted"): dockerd starts through nodeI/init.sh under `unshare --uts`, which sets
#   the hostname and re-mounts every cgroup hierarchy of /proc/1/mounts. It also mounts a
#   private /run, where dockerd listens on /var/run/docker.sock too: a service that mounts the
#   Docker socket (WHOOSH) must get its own node's engine, as on a real host (without this it
#   silently got the root namespace's engine, which is not in the Swarm).
# - Images: saved once from the root-namespace engine (`make images`), loaded into every node.
#   The root engine is started (ensure-engine.sh) only if none answers, and then stopped by
#   `down`.
# - Swarm address pool: --default-addr-pool 10.78.0.0/16, so no Swarm-allocated network can
#   overlap the node subnet (10.77.0.0/24) or the stack's overlay (10.231.0.0/16).
#
# Env: MULTINODE_PREFIX (chmn), MULTINODE_SUBNET (10.77.0: the first three octets),
#      MULTINODE_ADDR_POOL (10.78.0.0/16), MULTINODE_IMAGES (chorus-agent:test whoosh:test
#      hmmm-monitor:test), MULTINODE_START_TIMEOUT_S (60),
#      MULTINODE_OUTSIDE_PORTS ("8080 8081 8082 9001": the stack's published ports).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PREFIX="${MULTINODE_PREFIX:-chmn}"
SUBNET="${MULTINODE_SUBNET:-10.77.0}"
ADDR_POOL="${MULTINODE_ADDR_POOL:-10.78.0.0/16}"
IMAGE_TAG="${IMAGE_TAG:-test}"
IMAGES="${MULTINODE_IMAGES:-chorus-agent:$IMAGE_TAG whoosh:$IMAGE_TAG hmmm-monitor:$IMAGE_TAG}"
STATE="$ENGINE_STATE_DIR/multinode/$PREFIX"
BRIDGE="$PREFIX-br"
FWD_RULE=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT)

mlog() { printf '[multinode] %s\n' "$*" >&2; }
# Exit 3: this machine cannot provide namespaces or engines (tests skip on it, not fail).
unavailable() { printf '[multinode] UNAVAILABLE: %s\n' "$*" >&2; exit 3; }
node_dir() { echo "$STATE/node$1"; }
node_ns() { if [ "$1" = outside ]; then echo "$PREFIX-outside"; else echo "$PREFIX-node$1"; fi; }
OUTSIDE_IP="$SUBNET.250"
OUTSIDE_PORTS="${MULTINODE_OUTSIDE_PORTS:-8080 8081 8082 9001}"
node_ip() { echo "$SUBNET.$1"; }
node_sock() { echo "$(node_dir "$1")/docker.sock"; }
ndocker() { local i=$1; shift; DOCKER_HOST="unix://$(node_sock "$i")" docker "$@"; }

# PID from a pidfile, only if that process is alive and still a dockerd.
dockerd_pid() {
    local f=$1 pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] \
        && echo "$pid"
}

# True if any node of this prefix still runs: a dockerd from this checkout's pidfiles, or any
# process in one of the prefix's network namespaces (another checkout's run).
cluster_is_live() {
    local d ns
    for d in "$STATE"/node*; do
        [ -d "$d" ] && dockerd_pid "$d/docker.pid" >/dev/null && return 0
    done
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-node[0-9]+$" || true); do
        [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && return 0
    done
    return 1
}

wait_gone() {
    local pid=$1 secs=$2 deadline
    deadline=$(( $(date +%s) + secs ))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------
cmd_down() {
    local t0; t0=$(now_s)
    local i ns pid nodes=()
    # Every node this prefix names: from the state dir and from the namespace list (a run that
    # died half-way may have one without the other).
    for d in "$STATE"/node*; do [ -d "$d" ] && nodes+=("${d##*/node}"); done
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-node[0-9]+$" || true); do
        nodes+=("${ns#"$PREFIX"-node}")
    done
    mapfile -t nodes < <(printf '%s\n' "${nodes[@]}" | grep -E '^[0-9]+$' | sort -un)

    # 1. Stop every dockerd by its pidfile, all at once (each stops its containers and its
    #    containerd), then wait.
    local pids=()
    for i in "${nodes[@]}"; do
        if pid=$(dockerd_pid "$(node_dir "$i")/docker.pid"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        wait_gone "$pid" 30 || { mlog "dockerd $pid still alive after 30s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    done
    # 2. Whatever still runs in a node's namespace was started by it (shims, containers):
    #    end those PIDs, then delete the namespace (its veth end goes with it).
    for i in "${nodes[@]}"; do
        ns=$(node_ns "$i")
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            local left; left=$(ip netns pids "$ns" 2>/dev/null || true)
            if [ -n "$left" ]; then
                mlog "$ns: ending leftover pids $(echo $left)"
                # shellcheck disable=SC2086
                kill -KILL $left 2>/dev/null || true
                sleep 0.5
            fi
            ip netns del "$ns" 2>/dev/null || mlog "warning: ip netns del $ns failed"
        fi
        ip link del "$PREFIX-v$i" 2>/dev/null || true
    done
    # The host outside the Swarm, if `outside` made one.
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$PREFIX-outside"; then
        local left; left=$(ip netns pids "$PREFIX-outside" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$left" ] || { mlog "$PREFIX-outside: ending leftover pids $(echo $left)"; kill -KILL $left 2>/dev/null || true; sleep 0.5; }
        ip netns del "$PREFIX-outside" 2>/dev/null || mlog "warning: ip netns del $PREFIX-outside failed"
    fi
    ip link del "$PREFIX-vo" 2>/dev/null || true
    # 3. The bridge and its FORWARD rule.
    ip link del "$BRIDGE" 2>/dev/null || true
    while iptables -C "${FWD_RULE[@]}" 2>/dev/null; do iptables -D "${FWD_RULE[@]}" || break; done
    # 4. Node state (data roots: images, swarm state). Mounts were made in the nodes' private
    #    mount namespaces, which went away with their processes.
    local stop_root=0
    [ -f "$STATE/root-engine-started" ] && stop_root=1
    if [ -d "$STATE" ]; then
        rm -rf "$STATE" 2>/dev/null || { sleep 1; rm -rf "$STATE"; }
    fi
    # 5. The root-namespace engine, only if `up` started it.
    if [ "$stop_root" = 1 ]; then
        "$(dirname "${BASH_SOURCE[0]}")/stop-engine.sh"
    fi
    mlog "down: ${#nodes[@]} node(s) removed in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------------------
write_init() {
    local i=$1 dir; dir=$(node_dir "$i")
    cat >"$dir/daemon.json" <<EOF
{"deprecated-key-path": "$dir/key.json"}
EOF
    # The cgroup hierarchies as PID 1 sees them, re-mounted in this mount namespace.
    {
        echo "set -e"
        echo "hostname $PREFIX-node$i"
        echo "mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup"
        awk '$3 == "cgroup" || $3 == "cgroup2" {
                opts = $4; sub(/^rw,/, "", opts); sub(/^relatime,?/, "", opts)
                if ($2 == "/sys/fs/cgroup") next
                printf "mkdir -p %s\n", $2
                if (opts == "") printf "mount -t %s %s %s\n", $3, $1, $2
                else printf "mount -t %s -o %s %s %s\n", $3, opts, $1, $2
            }' /proc/1/mounts
        # A private /run, as on a host of its own: containers that bind-mount
        # /var/run/docker.sock (WHOOSH) get this node's engine, not the root namespace's.
        echo "mount -t tmpfs -o mode=755 run_node /run"
        echo "export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1"
        echo "exec dockerd --data-root '$dir/data' --exec-root '$dir/exec' --pidfile '$dir/docker.pid'" \
             "-H 'unix://$dir/docker.sock' -H unix:///var/run/docker.sock --config-file '$dir/daemon.json'" \
             "--swarm-default-advertise-addr $(node_ip "$i")"
    } >"$dir/init.sh"
}

cmd_up() {
    local n=${1:-3} i t0 t_step
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 20 ] || die "up N: N between 1 and 20"
    [ "$(id -u)" = 0 ] || unavailable "needs root (network namespaces, bridges, dockerd)"
    for c in ip iptables unshare dockerd docker; do
        command -v "$c" >/dev/null 2>&1 || unavailable "missing $c"
    done
    if ls "$STATE"/node* >/dev/null 2>&1 || ip link show "$BRIDGE" >/dev/null 2>&1; then
        # Left by a run that was killed (nothing runs in it any more): remove it. One that is
        # alive may belong to another checkout's run, so it is never touched.
        if cluster_is_live; then
            die "a multi-node Swarm ($PREFIX) is running (processes in its namespaces): run '$0 down' first"
        fi
        mlog "a stale multi-node Swarm ($PREFIX) with no live process is left over: removing it"
        cmd_down
    fi
    t0=$(now_s)
    mkdir -p "$STATE"
    trap 'rc=$?; if [ $rc -ne 0 ]; then mlog "up failed (exit $rc): tearing down"; cmd_down || true; fi' EXIT

    # The root engine, which holds the images.
    if ! docker_answers; then
        local had_pid=0
        [ -f "$ENGINE_PID_FILE" ] && had_pid=1
        ENGINE_SKIP_COMPOSE=1 "$(dirname "${BASH_SOURCE[0]}")/ensure-engine.sh"
        if [ "$had_pid" = 0 ] && [ -f "$ENGINE_PID_FILE" ]; then touch "$STATE/root-engine-started"; fi
    fi
    for img in $IMAGES; do
        docker image inspect "$img" >/dev/null 2>&1 || die "image $img missing in the root engine: run 'make images'"
    done
    t_step=$(now_s)
    docker save -o "$STATE/images.tar" $IMAGES &
    local save_pid=$!

    # Network: bridge (no IP), FORWARD rule, one namespace + veth per node.
    ip link add "$BRIDGE" type bridge || unavailable "cannot create bridge $BRIDGE"
    ip link set "$BRIDGE" up
    iptables -I "${FWD_RULE[@]}" || unavailable "cannot add an iptables FORWARD rule"
    for i in $(seq 1 "$n"); do
        local ns; ns=$(node_ns "$i")
        mkdir -p "$(node_dir "$i")"
        ip netns add "$ns" || unavailable "cannot create network namespace $ns"
        ip link add "$PREFIX-v$i" type veth peer name eth0 netns "$ns"
        ip link set "$PREFIX-v$i" master "$BRIDGE" up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$(node_ip "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
        write_init "$i"
        start_dockerd "$i"
    done
    local deadline=$(( $(date +%s) + ${MULTINODE_START_TIMEOUT_S:-60} ))
    for i in $(seq 1 "$n"); do
        wait_dockerd "$i" "$deadline" \
            || unavailable "node$i's dockerd did not answer within ${MULTINODE_START_TIMEOUT_S:-60}s"
    done
    mlog "$n engines answer after $(elapsed "$t_step")s"

    t_step=$(now_s)
    wait "$save_pid" || die "docker save failed"
    local load_pids=()
    for i in $(seq 1 "$n"); do
        ndocker "$i" load -q -i "$STATE/images.tar" >/dev/null &
        load_pids+=($!)
    done
    for p in "${load_pids[@]}"; do wait "$p" || die "docker load failed"; done
    rm -f "$STATE/images.tar"
    mlog "images loaded into $n nodes in $(elapsed "$t_step")s"

    t_step=$(now_s)
    ndocker 1 swarm init --advertise-addr "$(node_ip 1)" --listen-addr "$(node_ip 1):2377" \
        --default-addr-pool "$ADDR_POOL" >/dev/null
    local token; token=$(ndocker 1 swarm join-token -q worker)
    local join_pids=()
    for i in $(seq 2 "$n"); do
        ndocker "$i" swarm join --token "$token" --advertise-addr "$(node_ip "$i")" \
            --listen-addr "$(node_ip "$i"):2377" "$(node_ip 1):2377" >/dev/null &
        join_pids+=($!)
    done
    for p in "${join_pids[@]}"; do wait "$p" || die "swarm join failed"; done
    deadline=$(( $(date +%s) + 60 ))
    until [ "$(ndocker 1 node ls --format '{{.Status}}' | grep -c '^Ready$')" = "$n" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { ndocker 1 node ls >&2; die "not all $n nodes Ready"; }
        sleep 0.5
    done
    mlog "Swarm of $n nodes Ready in $(elapsed "$t_step")s"
    echo "$n" >"$STATE/nodes"
    trap - EXIT

    ndocker 1 node ls >&2
    cat >&2 <<EOF
[multinode] up: $n nodes in $(elapsed "$t0")s. node I = namespace $PREFIX-nodeI, address $SUBNET.I.
  export DOCKER_HOST=unix://$(node_sock 1)      # node1, the manager
  (or: eval "\$($0 env)")
  openssl rand -base64 32 | docker secret create chorus_identity -
  docker stack deploy --resolve-image never -c stack.yml CHORUS
  $0 exec 1 curl -s http://$(node_ip 1):8080/api/v1/agents    # host-mode ports, per node
  $0 down
EOF
}

start_dockerd() {
    local i=$1
    setsid ip netns exec "$(node_ns "$i")" unshare --uts sh "$(node_dir "$i")/init.sh" \
        >>"$(node_dir "$i")/dockerd.log" 2>&1 </dev/null &
}

wait_dockerd() {
    local i=$1 deadline=$2
    until DOCKER_HOST="unix://$(node_sock "$i")" timeout 10 docker info >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 20 "$(node_dir "$i")/dockerd.log" >&2 || true
            return 1
        fi
        sleep 0.3
    done
}

# The processes of a node: everything in its network namespace (dockerd, containerd, the
# shims, docker-proxy) and their descendants (the containers, which have namespaces of
# their own).
node_pids() {
    local roots; roots=$(ip netns pids "$(node_ns "$1")" 2>/dev/null || true)
    [ -n "$roots" ] || return 0
    ps -e -o pid=,ppid= | awk -v roots="$roots" '
        BEGIN { n = split(roots, r, /[ \n]+/); for (i = 1; i <= n; i++) if (r[i] != "") keep[r[i]] = 1 }
        { parent[$1] = $2 }
        END {
            do { grew = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } } while (grew)
            for (p in keep) print p
        }'
}

cmd_kill_node() {
    local i=${1:?kill-node I} pids
    [ -d "$(node_dir "$i")" ] || die "no node $i"
    pids=$(node_pids "$i")
    [ -n "$pids" ] || die "node $i runs nothing"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    local deadline=$(( $(date +%s) + 30 ))
    while [ -n "$(node_pids "$i")" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "node $i: processes left after SIGKILL: $(node_pids "$i" | tr '\n' ' ')"
        sleep 0.2
    done
    rm -f "$(node_dir "$i")/docker.pid"
    mlog "node$i powered off ($(echo "$pids" | wc -l) processes killed)"
}

cmd_start_node() {
    local i=${1:?start-node I}
    [ -f "$(node_dir "$i")/init.sh" ] || die "no node $i"
    if dockerd_pid "$(node_dir "$i")/docker.pid" >/dev/null; then die "node $i runs already"; fi
    start_dockerd "$i"
    wait_dockerd "$i" $(( $(date +%s) + ${MULTINODE_START_TIMEOUT_S:-60} )) \
        || die "node$i's dockerd did not answer within ${MULTINODE_START_TIMEOUT_S:-60}s"
    mlog "node$i started again"
}

cmd_outside() {
    local ns="$PREFIX-outside" port
    ip link show "$BRIDGE" >/dev/null 2>&1 || die "no multi-node Swarm ($PREFIX) is up"
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" && die "$ns exists already"
    ip netns add "$ns"
    ip link add "$PREFIX-vo" type veth peer name eth0 netns "$ns"
    ip link set "$PREFIX-vo" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$OUTSIDE_IP/24" dev eth0
    ip -n "$ns" link set eth0 up
    # Only the published ports of the nodes: not the Swarm's own ports (2377, 7946, 4789),
    # and the overlay has no route from here anyway.
    ip netns exec "$ns" iptables -A OUTPUT -o lo -j ACCEPT
    ip netns exec "$ns" iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    for port in $OUTSIDE_PORTS; do
        ip netns exec "$ns" iptables -A OUTPUT -p tcp -d "$SUBNET.0/24" --dport "$port" -j ACCEPT
    done
    ip netns exec "$ns" iptables -A OUTPUT -j REJECT
    mlog "outside host: $ns at $OUTSIDE_IP, reaches tcp ports $OUTSIDE_PORTS of the nodes only"
}

cmd_env() {
    [ -S "$(node_sock 1)" ] || die "no multi-node Swarm is up"
    echo "export DOCKER_HOST=unix://$(node_sock 1)"
}

cmd_exec() {
    local i=${1:?exec I CMD...}; shift
    exec ip netns exec "$(node_ns "$i")" "$@"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    env) cmd_env ;;
    exec) shift; cmd_exec "$@" ;;
    kill-node) shift; cmd_kill_node "$@" ;;
    start-node) shift; cmd_start_node "$@" ;;
    outside) cmd_outside ;;
    *) echo "usage: $0 up [N] | down | env | exec I|outside CMD... | kill-node I | start-node I | outside" >&2; exit 2 ;;
esac
