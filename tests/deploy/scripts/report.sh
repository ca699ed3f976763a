#!/bin/sh
# Test provisioner: reports progress with the runbot line protocol, prints its arguments and its
# whole environment, writes one line to stderr, and succeeds.
echo "runbot:stage render 1/2 rendering the chart"
for a in "$@"; do printf 'arg=[%s]\n' "$a"; done
env | sort
echo "a warning on stderr" >&2
echo "runbot:stage deploy 2/2 helm upgrade --install"
echo "runbot:url https://$RUNBOT_ENV.preview.example.com"
echo "runbot:node ip-10-0-1-17 capacity=spot type=m5.large zone=eu-west-1a"
echo "runbot:node ip-10-0-2-63 capacity=on-demand type=m5.xlarge zone=eu-west-1b"
exit 0
