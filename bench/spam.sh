#!/bin/sh
# ./mxg bench spam: see bench/spam.py
exec /usr/bin/python3 "$(dirname "$0")/spam.py" "$@"
