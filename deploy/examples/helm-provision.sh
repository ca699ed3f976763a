#!/usr/bin/env bash
# Example program for runbot's exec backend: one PR environment = one namespace + one Helm release.
#
#   runbot runs:  helm-provision.sh <verb> <env-id> [the app's provisioner_args...]
#   with RUNBOT_* variables (deploy/README.md) and CHART from the app's provisioner_env.
#
# Lines starting with "runbot:" report progress to chat; everything else is kept as log, and the
# exit status decides success. Every command gets its arguments as an array (no eval, no
# command strings), so values typed in chat cannot inject shell code. Needs kubectl, helm, jq.
set -euo pipefail

verb=$1 env_id=$2
shift 2
extra_args=("$@")                      # e.g. --values ci.yaml
ns=$RUNBOT_NAMESPACE
release=$env_id
chart=${CHART:-./chart}

# kube-janitor deletes the namespace when it expires (cluster-events.md §3.1). janitor/ttl counts
# from namespace creation, so once an absolute expiry is known it replaces the TTL.
if [[ -n ${RUNBOT_JANITOR_EXPIRES:-} ]]; then
  annotations=("janitor/expires=$RUNBOT_JANITOR_EXPIRES" "janitor/ttl-")
else
  annotations=("janitor/ttl=$RUNBOT_JANITOR_TTL")
fi

report_url_and_nodes() {
  local host node
  host=$(kubectl get ingress -n "$ns" -o jsonpath='{.items[0].spec.rules[0].host}')
  echo "runbot:url https://$host"
  kubectl get pods -n "$ns" -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u |
    while IFS= read -r node; do
      [[ -n $node ]] || continue
      kubectl get node "$node" -o jsonpath='runbot:node {.metadata.name} capacity={.metadata.labels.karpenter\.sh/capacity-type} type={.metadata.labels.node\.kubernetes\.io/instance-type} zone={.metadata.labels.topology\.kubernetes\.io/zone}{"\n"}'
    done
}

case $verb in
  up)
    echo "runbot:stage create-namespace 1/3 namespace $ns"
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
    kubectl annotate namespace "$ns" --overwrite "${annotations[@]}"

    echo "runbot:stage deploy 2/3 helm upgrade --install $release"
    values_file=$(mktemp)
    trap 'rm -f "$values_file"' EXIT
    # --set k=v from chat, as a values file: "a.b=c" becomes {"a":{"b":"c"}}; no comma parsing.
    jq 'reduce to_entries[] as $e ({}; setpath($e.key | split("."); $e.value))' \
      <<<"$RUNBOT_VALUES" >"$values_file"
    image_args=()
    if [[ -n $RUNBOT_IMAGE ]]; then image_args=(--set-string "image.tag=$RUNBOT_IMAGE"); fi
    helm upgrade --install "$release" "$chart" --namespace "$ns" --wait --timeout 10m \
      --values "$values_file" "${image_args[@]}" "${extra_args[@]}"

    echo "runbot:stage smoke-test 3/3 checking the ingress"
    report_url_and_nodes
    ;;
  down)
    echo "runbot:stage uninstall 1/2 helm uninstall $release"
    if helm status "$release" --namespace "$ns" >/dev/null 2>&1; then
      helm uninstall "$release" --namespace "$ns" --wait
    fi
    echo "runbot:stage delete-namespace 2/2 deleting namespace $ns"
    kubectl delete namespace "$ns" --ignore-not-found --wait=true
    ;;
  suspend)
    echo "runbot:stage scale-to-zero 1/1 scaling $ns to zero (volumes are kept)"
    kubectl scale deployment --all --replicas=0 --namespace "$ns"
    ;;
  resume)
    echo "runbot:stage scale-up 1/1 restoring the release's replicas"
    helm upgrade "$release" "$chart" --namespace "$ns" --reuse-values --wait --timeout 10m \
      "${extra_args[@]}"
    report_url_and_nodes
    ;;
  extend)
    echo "runbot:stage annotate 1/1 expires at ${RUNBOT_EXPIRES_AT:-?}"
    kubectl annotate namespace "$ns" --overwrite "${annotations[@]}"
    ;;
  *)
    echo "unknown verb '$verb'" >&2
    exit 2
    ;;
esac
