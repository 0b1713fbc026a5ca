#!/usr/bin/env bash
# Runs the whole test suite on Debian 12 as root: installs what it needs first (the daemons the
# interop tests start, and the Python packages), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

packages=(slapd ldap-utils dovecot-imapd dovecot-pop3d postfix inn2 nginx-light nftables
          openssl iproute2 procps graphviz iptables firewalld dnsutils krb5-user
          samba samba-ad-dc samba-ad-provision winbind smbclient python3-samba chrony
          prometheus chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  # inn2's configure step fails when the host name has no domain; it is finished below.
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null || true
fi
if dpkg-query -W inn2 >/dev/null 2>&1 && [ ! -f /etc/news/inn.conf ]; then
  # inn.conf belongs to inn2-inews; a copy removed by hand is not put back by a plain install.
  apt-get install -y -q --reinstall -o Dpkg::Options::=--force-confmiss inn2-inews </dev/null || true
fi
if [ -f /etc/news/inn.conf ] && ! grep -q '^domain:' /etc/news/inn.conf; then
  sed -i 's/^#* *domain:.*/domain:                      portcall.test/' /etc/news/inn.conf
  grep -q '^domain:' /etc/news/inn.conf || echo 'domain:                      portcall.test' >> /etc/news/inn.conf
fi
dpkg --configure -a </dev/null
for tool in slapd ldapsearch dovecot postfix nginx nft openssl ip dot iptables-restore \
            ip6tables-restore firewall-offline-cmd ss dig kinit samba samba-tool smbclient \
            rpcclient smbd unshare chronyd kpasswd ntlm_auth slapadd pgrep prometheus chromium; do
  command -v "$tool" >/dev/null || { echo "CI: $tool is missing after install" >&2; exit 1; }
done
# Samba's own client libraries (the independent clients of the DC responders) live in the
# system Python, not in .venv.
/usr/bin/python3 -c 'import samba.dcerpc.epmapper, samba.net' 2>/dev/null \
  || { echo "CI: python3-samba is missing after install" >&2; exit 1; }
[ -x /usr/lib/news/bin/nnrpd ] || { echo "CI: nnrpd (inn2) is missing after install" >&2; exit 1; }

# Everything Python goes into .venv: a system Python may refuse pip (PEP 668).
source scripts/venv.sh
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,aerleon]'
export PATH="$VENV/bin:$PATH"

exec "$VENV/bin/python" -m pytest -q "$@"
