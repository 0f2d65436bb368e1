#!/bin/sh
# The agents' winner rule as first written: the auction closes at the first
# bid that meets the reserve (40), and that bidder wins.
# It depends on the order bids arrive in: see Docs/REPLAY.md.
"$(dirname "$0")/bids.sh" | awk '$2 >= 40 { print "winner " $1 " stake " $2; found = 1; exit } END { if (!found) print "no winner" }'
