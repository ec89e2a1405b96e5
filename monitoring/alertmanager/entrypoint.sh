#!/bin/sh
# The Alertmanager image's entrypoint: renders alertmanager.yml with the environment (every
# line ending in `# env: NAME` takes NAME's value when it is set), checks the result with
# amtool and runs Alertmanager on it. `--check-only` stops after the check (make test-unit
# renders and checks the shipped file with it).
#
# Env: ALERTMANAGER_CONFIG (/etc/alertmanager/alertmanager.yml), ALERTMANAGER_RENDERED
#      (next to it), ALERTMANAGER_WEBHOOK_URL (required by the shipped file),
#      ALERTMANAGER_CRITICAL_WEBHOOK_URL (default: ALERTMANAGER_WEBHOOK_URL),
#      ALERTMANAGER_RETENTION (120h), ALERTMANAGER_EXTERNAL_URL, AMTOOL (amtool), and the
#      `# env:` names.
set -eu

config="${ALERTMANAGER_CONFIG:-/etc/alertmanager/alertmanager.yml}"
rendered="${ALERTMANAGER_RENDERED:-$(dirname "$config")/alertmanager.rendered.yml}"

die() {
    echo "chorus-alertmanager: $*" >&2
    exit 2
}

: "${ALERTMANAGER_CRITICAL_WEBHOOK_URL:=${ALERTMANAGER_WEBHOOK_URL:-}}"
export ALERTMANAGER_CRITICAL_WEBHOOK_URL

# Alertmanager 0.25 logs a webhook's URL with every failed attempt: no credentials in it.
# (The value itself is never printed here.)
for name in ALERTMANAGER_WEBHOOK_URL ALERTMANAGER_CRITICAL_WEBHOOK_URL; do
    eval "url=\${$name:-}"
    case "$url" in
        "") ;;
        http://*|https://*) ;;
        *) die "$name must be an http:// or https:// URL" ;;
    esac
    case "$url" in
        *://*@*|*\?*)
            die "$name carries credentials or a query string: Alertmanager would write it into its log on every failed attempt. Send a token as a header from a file instead (http_config.authorization.credentials_file in alertmanager.yml, a Swarm secret)" ;;
    esac
done

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

if grep -q 'alertmanager-webhook\.invalid' "$rendered"; then
    die "no receiver: set ALERTMANAGER_WEBHOOK_URL to the webhook that is told about alerts (e.g. http://alert-relay:9095/), or edit the receivers of $config (README, \"Alerts reach a person\")"
fi

# A bad value is reported here (amtool's message: which field, which line), not as a crash
# loop of Alertmanager itself. amtool prints no configuration values.
"${AMTOOL:-amtool}" check-config "$rendered" >&2

[ "${1:-}" = "--check-only" ] && exit 0

exec alertmanager \
    --config.file="$rendered" \
    --storage.path=/alertmanager \
    --data.retention="${ALERTMANAGER_RETENTION:-120h}" \
    --web.listen-address=:9093 \
    ${ALERTMANAGER_EXTERNAL_URL:+--web.external-url="$ALERTMANAGER_EXTERNAL_URL"} \
    --cluster.listen-address= \
    "$@"
