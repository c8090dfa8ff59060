#!/usr/bin/env bash
# Checks a built docflow .deb for real: its contents, then `dpkg -i` (twice:
# install and reinstall), the installed user, directories and binary, and
# `dpkg --purge`. Needs root; systemd need not run (maintainer scripts cope).
# Usage: deploy/debian/check-package.sh path/to/docflow_*.deb
set -euo pipefail
deb="$1"
fail() { echo "check-package: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W -f='${Status}' docflow 2>/dev/null | grep -q "install ok"; then
    fail "a docflow package is already installed here; refusing to purge it"
fi

contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/docflowd ./etc/docflow/docflow.toml \
    ./usr/lib/systemd/system/docflowd.service ./usr/lib/sysusers.d/docflow.conf \
    ./usr/share/doc/docflow/README.md ./usr/share/docflow/prometheus/docflow-rules.yml \
    ./usr/share/docflow/grafana/dashboards/docflow.json \
    ./usr/share/docflow/grafana/provisioning/dashboards/docflow.yaml; do
    grep -qE " $path\$" <<<"$contents" || fail "$path missing from the package"
done
dpkg-deb --field "$deb" Depends | grep -q systemd || fail "no dependency providing systemd-sysusers"
[ "$(dpkg-deb -I "$deb" conffiles | tr -d ' ')" = "/etc/docflow/docflow.toml" ] \
    || dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/docflow/docflow.toml \
    || fail "/etc/docflow/docflow.toml is not a conffile"

cleanup() { dpkg --purge docflow >/dev/null 2>&1 || true; }
trap cleanup EXIT

dpkg -i "$deb" || fail "dpkg -i"
getent passwd docflow >/dev/null || fail "user docflow not created"
[ "$(stat -c '%U:%G %a' /var/lib/docflow)" = "docflow:docflow 750" ] \
    || fail "/var/lib/docflow is $(stat -c '%U:%G %a' /var/lib/docflow)"
[ -f /etc/docflow/smtp-password ] && [ "$(stat -c '%a' /etc/docflow/smtp-password)" = 600 ] \
    || fail "/etc/docflow/smtp-password (LoadCredential source) missing or not 0600"
[ -L /etc/systemd/system/multi-user.target.wants/docflowd.service ] \
    || fail "docflowd.service not enabled"
/usr/bin/docflowd --version | grep -q docflowd || fail "docflowd --version"
/usr/bin/docflowd check-config -c /etc/docflow/docflow.toml || fail "shipped config refused"
# The service user can open the store (no daemon runs: the CLI reads it itself).
runuser -u docflow -- /usr/bin/docflowd report -c /etc/docflow/docflow.toml --format json \
    | grep -q '"agency"' || fail "docflowd report as user docflow"
[ "$(stat -c '%U' /var/lib/docflow/db 2>/dev/null || stat -c '%U' /var/lib/docflow)" = docflow ] \
    || fail "store not owned by docflow"

dpkg -i "$deb" || fail "dpkg -i (reinstall)"
dpkg --purge docflow || fail "dpkg --purge"
trap - EXIT
for gone in /usr/bin/docflowd /var/lib/docflow /etc/docflow \
    /etc/systemd/system/multi-user.target.wants/docflowd.service; do
    [ ! -e "$gone" ] || fail "$gone left after purge"
done
echo "check-package: OK ($deb: contents, install, reinstall, user, store, purge)"
