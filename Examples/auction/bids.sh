#!/bin/sh
# Prints "bidder stake" for each bid in a stream of Trail events (JSON lines,
# as `trail replay --json` and `--exec` write them), in the order given.
# POSIX sed only: the payload is a JSON string holding {"bidder":…,"stake":…}.
sed -n 's/.*\\"bidder\\":\\"\([A-Za-z0-9_-]*\)\\",\\"stake\\":\([0-9]*\).*"type":"bid".*/\1 \2/p'
