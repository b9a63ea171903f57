#!/bin/sh
# ./mxg bench relay: see bench/relay.py
exec /usr/bin/python3 "$(dirname "$0")/relay.py" "$@"
