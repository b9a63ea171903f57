#!/bin/sh
# deps.sh - the one list of Debian packages mxguard needs.
# Installs only what is missing; safe to run repeatedly.  Services that the
# packages would start (postfix, slapd, redis, ...) are not started: tests
# start their own instances on loopback, in their own folders.
set -eu

BUILD="build-essential cmake pkg-config"
LIBS="libevent-dev libssl-dev libconfig-dev libcmocka-dev liblmdb-dev \
libhiredis-dev libldap-dev libpq-dev libmariadb-dev libpcre2-dev \
libgmime-3.0-dev libarchive-dev libmagic-dev libc-ares-dev libxxhash-dev libmimalloc-dev libidn2-dev"
TOOLS="openssl ca-certificates python3 python3-pytest swaks postfix npm \
ldap-utils slapd postgresql mariadb-server redis-server procps iproute2 \
lmdb-utils dnsmasq-base clang libclang-rt-14-dev"

BENCH="bogofilter spamassassin util-linux postfix-ldap"

case "${1:-all}" in
run) WANT="$BUILD $LIBS swaks python3 npm ca-certificates" ;;
bench) WANT="$BUILD $LIBS $TOOLS $BENCH" ;;
*)   WANT="$BUILD $LIBS $TOOLS" ;;
esac

missing=""
for p in $WANT; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		continue
	fi
	# tools some machines bring from elsewhere (Node.js's own npm, say)
	case "$p" in
	npm|python3) command -v "$p" >/dev/null 2>&1 && continue ;;
	esac
	missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' own services down while installing.
prc=/usr/sbin/policy-rc.d
created=0
if [ ! -e $prc ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee $prc >/dev/null
	$SUDO chmod 755 $prc
	created=1
	# removed however the install ends: left behind, it kept every
	# service of the machine from starting on later installs and upgrades
	trap '$SUDO rm -f $prc' EXIT
	trap 'exit 130' INT TERM
fi
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
exit 0
