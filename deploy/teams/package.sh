#!/bin/sh
# Builds the Teams app package (a zip of manifest.json and the two icons) with your ids filled in:
#   deploy/teams/package.sh <microsoft-app-id> <runbot-public-host> [organisation] > runbot-teams.zip
# Upload the zip in Teams (Apps → Manage your apps → Upload an app) or the Teams admin center.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 <microsoft-app-id> <runbot-public-host> [organisation] > runbot-teams.zip" >&2
  exit 2
fi
app_id=$1 host=$2 org=${3:-runbot}
case $app_id in
  ????????-????-????-????-????????????) ;;
  *) echo "$0: '$app_id' is not an app id (a GUID)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s/{{MICROSOFT_APP_ID}}/$app_id/g" -e "s/{{RUNBOT_HOST}}/$host/g" -e "s/{{ORGANISATION}}/$org/g" \
  "$here/manifest.json" > "$work/manifest.json"
cp "$here/color.png" "$here/outline.png" "$work/"
cd "$work"
python3 -m zipfile -c package.zip manifest.json color.png outline.png
cat package.zip
