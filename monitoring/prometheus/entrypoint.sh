#!/bin/sh
# The Prometheus image's entrypoint: renders prometheus.yml with the environment (every line
# ending in `# env: NAME` takes NAME's value when it is set), writes the alertmanager targets
# of PROMETHEUS_ALERTMANAGERS, checks the result and runs Prometheus on it.
#
# Env: PROMETHEUS_CONFIG (/etc/prometheus/prometheus.yml), PROMETHEUS_RETENTION (15d),
#      PROMETHEUS_ALERTMANAGERS (host:port,... ; empty: none), and the `# env:` names.
set -eu

config="${PROMETHEUS_CONFIG:-/etc/prometheus/prometheus.yml}"
dir=$(dirname "$config")
# Next to the original: rule_files and file_sd paths are relative to the config's directory.
rendered="$dir/prometheus.rendered.yml"

awk '
    match($0, /#[ \t]*env:[ \t]*[A-Z_][A-Z0-9_]*[ \t]*$/) {
        comment = substr($0, RSTART)
        body = substr($0, 1, RSTART - 1)
        name = comment
        sub(/^#[ \t]*env:[ \t]*/, "", name)
        sub(/[ \t]*$/, "", name)
        if (ENVIRON[name] != "") {
            # keep the indentation, a list dash and a "key: "; replace only the value
            match(body, /^[ \t]*(- )?([A-Za-z_][A-Za-z0-9_]*:[ \t]+)?/)
            prefix = substr(body, 1, RLENGTH)
            $0 = prefix ENVIRON[name] "  " comment
        }
    }
    { print }
' "$config" >"$rendered"

mkdir -p "$dir/alertmanagers"
if [ -n "${PROMETHEUS_ALERTMANAGERS:-}" ]; then
    {
        echo "- targets:"
        echo "$PROMETHEUS_ALERTMANAGERS" | tr ',' '\n' | sed -e 's/^[ \t]*//' -e 's/[ \t]*$//' \
            -e '/^$/d' -e 's/^/    - /'
    } >"$dir/alertmanagers/env.yml"
else
    rm -f "$dir/alertmanagers/env.yml"
fi

# A bad value is reported here, with the file and line, not as a crash loop.
promtool check config --syntax-only "$rendered" >&2

exec prometheus \
    --config.file="$rendered" \
    --storage.tsdb.path=/prometheus \
    --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-15d}" \
    --web.listen-address=:9090 \
    "$@"
