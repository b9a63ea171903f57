#!/bin/sh
# Every key that `mxguard check-config --keys` knows must be documented
# (as `key` in docs/configuration.md), and the docs must not describe keys
# that do not exist.
bin=$1 doc=$2
fail=0
for k in $("$bin" check-config --keys); do
	if ! grep -q "\`$k\`" "$doc"; then
		echo "undocumented configuration key: $k" >&2
		fail=1
	fi
done
# keys documented in the key tables: lines starting "| `key`"
for k in $(sed -n 's/^| `\([a-z_.]*\)`.*/\1/p' "$doc"); do
	if ! "$bin" check-config --keys | grep -qx "$k"; then
		echo "docs describe a key that does not exist: $k" >&2
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "all $("$bin" check-config --keys | wc -l) keys documented"
exit $fail
