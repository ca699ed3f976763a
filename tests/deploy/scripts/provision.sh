#!/bin/sh
# Test provisioner: `up` runs until it is killed; every other verb succeeds at once.
verb=$1
echo "pid $$"
echo "runbot:stage $verb 1/1 working on $2"
if [ "$verb" = up ]; then
  while :; do sleep 0.05; done
fi
exit 0
