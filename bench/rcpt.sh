#!/bin/sh
# ./mxg bench rcpt: see bench/rcpt.py
exec /usr/bin/python3 "$(dirname "$0")/rcpt.py" "$@"
