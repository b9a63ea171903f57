#!/bin/sh
# ./mxg bench idle: see bench/idle.py
exec /usr/bin/python3 "$(dirname "$0")/idle.py" "$@"
