#!/bin/sh
# The fixed rule: the highest stake that meets the reserve wins; equal stakes
# go to the bidder whose name sorts first. Every order of the same bids gives
# the same winner.
"$(dirname "$0")/bids.sh" | awk '
  $2 >= 40 && (best == "" || $2 > stake || ($2 == stake && $1 < best)) { best = $1; stake = $2 }
  END { if (best == "") print "no winner"; else print "winner " best " stake " stake }'
