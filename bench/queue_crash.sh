#!/bin/sh
# ./mxg bench queue_crash: see bench/queue_crash.py
exec /usr/bin/python3 "$(dirname "$0")/queue_crash.py" "$@"
