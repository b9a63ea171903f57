#!/bin/sh
# ./mxg bench queue: see bench/queue.py
exec /usr/bin/python3 "$(dirname "$0")/queue.py" "$@"
