#!/bin/sh
# Test provisioner: never finishes and ignores SIGTERM (only SIGKILL stops it).
trap 'echo "got TERM, ignoring"' TERM
echo "runbot:stage wait 1/1 waiting forever"
while :; do sleep 0.05; done
