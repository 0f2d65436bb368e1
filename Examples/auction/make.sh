#!/bin/sh
# Rebuilds the example: two relays' logs of one task auction, each exported
# as segment files. The requester posts the task on relay A; Alice bids
# through relay A, Bob and Carol through relay B; each relay learns the other's
# bids after its own, as a federation under load does. On each relay an
# auctioneer agent folds the log with winner.sh and posts its award; the two
# awards then replicate too. Both relays end with the same six events, in two
# different orders, and two awards that disagree.
#   Examples/auction/make.sh [path/to/trail]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
trail=${1:-trail}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ns=auction/task-7
$trail keygen --out "$work/requester.key" > /dev/null
$trail keygen --out "$work/alice.key" > /dev/null
$trail keygen --out "$work/bob.key" > /dev/null
$trail keygen --out "$work/carol.key" > /dev/null
id() { sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p'; }
task=$($trail append $ns '{"task":"summarise 40 PDFs","reserve":40,"deadline":"2026-11-27T18:00:00Z"}' \
  --type task --key "$work/requester.key" --data "$work/a" --json | id)
$trail export --from "$work/a" --out "$work/t1" > /dev/null
$trail import "$work/t1" --data "$work/b" > /dev/null
$trail append $ns '{"bidder":"alice","stake":45}' --type bid --parent "$task" --key "$work/alice.key" --data "$work/a" > /dev/null
$trail append $ns '{"bidder":"bob","stake":60}' --type bid --parent "$task" --key "$work/bob.key" --data "$work/b" > /dev/null
$trail append $ns '{"bidder":"carol","stake":30}' --type bid --parent "$task" --key "$work/carol.key" --data "$work/b" > /dev/null
$trail export --from "$work/b" --out "$work/t2" > /dev/null
$trail import "$work/t2" --data "$work/a" > /dev/null
$trail export --from "$work/a" --out "$work/t3" > /dev/null
$trail import "$work/t3" --data "$work/b" > /dev/null
bids=$($trail replay $ns --from "$work/a" --type bid --json | id | sed 's/^/--parent /' | tr '\n' ' ')
for relay in a b; do
  winner=$($trail replay $ns --from "$work/$relay" --json | "$here/winner.sh" | awk '{ print $2 }')
  # shellcheck disable=SC2086 # $bids is a list of flags
  $trail append $ns "{\"winner\":\"$winner\"}" --type award $bids --key "$work/requester.key" --data "$work/$relay" > /dev/null
done
$trail export --from "$work/a" --out "$work/t4" --type award > /dev/null
$trail export --from "$work/b" --out "$work/t5" --type award > /dev/null
$trail import "$work/t5" --data "$work/a" > /dev/null
$trail import "$work/t4" --data "$work/b" > /dev/null
rm -rf "$here/relay-a" "$here/relay-b"
$trail export --from "$work/a" --out "$here/relay-a"
$trail export --from "$work/b" --out "$here/relay-b"
