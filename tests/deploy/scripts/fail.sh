#!/bin/sh
# Test provisioner: prints 30 numbered lines, an error on stderr, and exits with status 3.
echo "runbot:stage migrate 1/1 running migrations"
i=1
while [ "$i" -le 30 ]; do echo "step $i"; i=$((i + 1)); done
echo "error: relation orders does not exist" >&2
exit 3
