#!/usr/bin/env bash
# End-to-end test on a real cluster (kind by default; any cluster with KIND=0): builds the
# images, installs the chart, and runs the Stream scenario with the AWS CLI:
#   create -> Ready with 2 shards -> put/get records -> scale to 4 -> consumer -> delete,
#   and a multi-pod Stream (shardsPerPod): 4 shards on 2 pods -> put/get -> 6 shards on 3 pods.
#
# Needs: docker, kind (unless KIND=0), kubectl, helm (v3.14+ or v4), aws (CLI v2), jq.
# Usage: tests/e2e/kind.sh            # creates cluster "tributary-e2e", keeps it afterwards
#        CLEANUP=1 tests/e2e/kind.sh  # deletes the cluster at the end
#        KIND=0 IMAGE_PREFIX=registry.example.com/ tests/e2e/kind.sh   # existing cluster;
#             the images are pushed to IMAGE_PREFIX instead of loaded into kind
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="${CLUSTER:-tributary-e2e}"
ns="${NAMESPACE:-tributary-e2e}"
kind_mode="${KIND:-1}"
prefix="${IMAGE_PREFIX:-}"
tag="${TAG:-e2e}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""

log() { printf '\n=== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; kubectl -n "$ns" get tributary,sts,pods -o wide >&2 || true; exit 1; }

# Polls `kubectl get stream/NAME -o jsonpath=PATH` until it prints WANT (timeout 300 s).
wait_jsonpath() {
  local what="$1" path="$2" want="$3" got=""
  for _ in $(seq 1 150); do
    got="$(kubectl -n "$ns" get "$what" -o "jsonpath=$path" 2>/dev/null || true)"
    [[ "$got" == "$want" ]] && return 0
    sleep 2
  done
  fail "$what $path is '$got', expected '$want'"
}

for tool in docker kubectl helm aws jq; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

if [[ "$kind_mode" == 1 ]]; then
  command -v kind >/dev/null || fail "kind is not installed"
  if ! kind get clusters | grep -qx "$cluster"; then
    log "Creating kind cluster $cluster"
    kind create cluster --name "$cluster" --wait 120s
  fi
  kubectl config use-context "kind-$cluster"
fi

log "Building images"
docker build -f "$root/tests/e2e/Dockerfile" --target dataplane -t "${prefix}tributary:$tag" "$root"
docker build -f "$root/tests/e2e/Dockerfile" --target operator -t "${prefix}tributary-operator:$tag" "$root"
if [[ "$kind_mode" == 1 ]]; then
  kind load docker-image --name "$cluster" "tributary:$tag" "tributary-operator:$tag"
  pull=Never
else
  docker push "${prefix}tributary:$tag"
  docker push "${prefix}tributary-operator:$tag"
  pull=Always
fi

log "Installing the chart"
helm upgrade --install tributary "$root/charts/tributary" \
  --namespace tributary-system --create-namespace --wait --timeout 5m \
  --set image.repository="${prefix}tributary-operator" --set image.tag="$tag" --set image.pullPolicy="$pull" \
  --set dataplane.image.repository="${prefix}tributary" --set dataplane.image.tag="$tag" \
  --set dataplane.image.pullPolicy="$pull" --set dataplane.defaults.storageSize=1Gi
kubectl get crd streams.tributary.dev >/dev/null

log "Creating Stream orders"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" apply -f "$root/examples/streams/orders.yaml"
kubectl -n "$ns" wait --for=condition=Ready stream/orders --timeout=300s
wait_jsonpath stream/orders '{.status.openShardCount}' 2
gen="$(kubectl -n "$ns" get stream/orders -o jsonpath='{.metadata.generation}')"
wait_jsonpath stream/orders '{.status.observedGeneration}' "$gen"

log "Writing and reading records through the Service"
kubectl -n "$ns" port-forward svc/orders 14567:4567 >/dev/null 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null || true' EXIT
sleep 3
ep=(--endpoint-url http://127.0.0.1:14567)
aws "${ep[@]}" kinesis put-record --stream-name orders --partition-key k1 \
  --data "$(printf 'hello tributary' | base64)" --cli-binary-format base64 >/dev/null
shard="$(aws "${ep[@]}" kinesis list-shards --stream-name orders | jq -r '.Shards[].ShardId' | head -n1)"
found=0
for s in $(aws "${ep[@]}" kinesis list-shards --stream-name orders | jq -r '.Shards[].ShardId'); do
  it="$(aws "${ep[@]}" kinesis get-shard-iterator --stream-name orders --shard-id "$s" \
        --shard-iterator-type TRIM_HORIZON | jq -r .ShardIterator)"
  n="$(aws "${ep[@]}" kinesis get-records --shard-iterator "$it" | jq '.Records | length')"
  found=$((found + n))
done
[[ "$found" -ge 1 ]] || fail "the record written to $shard was not read back"

log "Resharding to 4 shards with kubectl scale"
kubectl -n "$ns" scale stream/orders --replicas=4
wait_jsonpath stream/orders '{.status.openShardCount}' 4
kubectl -n "$ns" wait --for=condition=Ready stream/orders --timeout=300s
[[ "$(aws "${ep[@]}" kinesis describe-stream-summary --stream-name orders \
      | jq .StreamDescriptionSummary.OpenShardCount)" == 4 ]] || fail "the data plane does not report 4 shards"

log "Registering a StreamConsumer"
kubectl -n "$ns" apply -f "$root/examples/streams/orders-consumer.yaml"
kubectl -n "$ns" wait --for=condition=Ready streamconsumer/orders-dashboard --timeout=120s
arn="$(kubectl -n "$ns" get streamconsumer/orders-dashboard -o jsonpath='{.status.consumerArn}')"
[[ "$arn" == arn:aws:kinesis:* ]] || fail "no consumer ARN in status: '$arn'"

log "A DeliveryStream reading orders, and an AnalyticsApp with invalid SQL"
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: tributary.dev/v1alpha1
kind: DeliveryStream
metadata:
  name: orders-archive
spec:
  deliveryStreamType: KinesisStreamAsSource
  kinesisStreamSourceConfiguration:
    streamRef:
      name: orders
  extendedS3DestinationConfiguration:
    bucketARN: arn:aws:s3:::archive
    bufferingHints:
      sizeInMBs: 1
      intervalInSeconds: 1
---
apiVersion: tributary.dev/v1alpha1
kind: AnalyticsApp
metadata:
  name: bad-sql
spec:
  applicationCode: |
    CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(4));
    CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM NOPE FROM "SOURCE_SQL_STREAM_001";
  inputs:
    - namePrefix: SOURCE_SQL_STREAM
      kinesisStreamsInput:
        resourceRef:
          name: orders
      inputSchema:
        recordFormat:
          recordFormatType: JSON
          mappingParameters:
            jsonMappingParameters:
              recordRowPath: $
        recordColumns:
          - name: TICKER
            mapping: $.ticker
            sqlType: VARCHAR(4)
YAML
kubectl -n "$ns" wait --for=condition=Ready deliverystream/orders-archive --timeout=300s
arn="$(kubectl -n "$ns" get deliverystream/orders-archive -o jsonpath='{.status.deliveryStreamArn}')"
[[ "$arn" == arn:aws:firehose:* ]] || fail "no delivery stream ARN in status: '$arn'"
kubectl -n "$ns" wait --for=condition=QueryValid=false analyticsapp/bad-sql --timeout=120s
msg="$(kubectl -n "$ns" get analyticsapp/bad-sql -o jsonpath='{.status.conditions[?(@.type=="QueryValid")].message}')"
[[ "$msg" == "From line 3, column"* ]] || fail "QueryValid has no position: '$msg'"
! kubectl -n "$ns" get deployment/bad-sql-analytics >/dev/null 2>&1 || fail "an invalid app was deployed"
kubectl -n "$ns" delete analyticsapp/bad-sql deliverystream/orders-archive --wait --timeout=120s

log "A multi-pod Stream: events, 4 shards at 2 per pod"
kubectl -n "$ns" apply -f "$root/examples/cluster/events.yaml"
kubectl -n "$ns" wait --for=condition=Ready stream/events --timeout=300s
wait_jsonpath stream/events '{.status.readyReplicas}' 2
wait_jsonpath statefulset/events '{.spec.replicas}' 2
kubectl -n "$ns" get secret/events-cluster >/dev/null || fail "no cluster Secret events-cluster"
kubectl -n "$ns" port-forward svc/events 14568:4567 >/dev/null 2>&1 &
pf2=$!
trap 'kill $pf $pf2 2>/dev/null || true' EXIT
sleep 3
ev=(--endpoint-url http://127.0.0.1:14568)
# Count of the records of every shard of `events`, read from the trim horizon.
count_events() {
  local total=0 it n
  for s in $(aws "${ev[@]}" kinesis list-shards --stream-name events | jq -r '.Shards[].ShardId'); do
    it="$(aws "${ev[@]}" kinesis get-shard-iterator --stream-name events --shard-id "$s" \
          --shard-iterator-type TRIM_HORIZON | jq -r .ShardIterator)"
    n="$(aws "${ev[@]}" kinesis get-records --shard-iterator "$it" | jq '.Records | length')"
    total=$((total + n))
  done
  echo "$total"
}
for i in $(seq 1 20); do
  aws "${ev[@]}" kinesis put-record --stream-name events --partition-key "key-$i" \
    --data "$(printf 'event %s' "$i" | base64)" --cli-binary-format base64 >/dev/null
done
[[ "$(count_events)" == 20 ]] || fail "the 20 records written to events were not all read back"
kubectl -n "$ns" scale stream/events --replicas=6
wait_jsonpath statefulset/events '{.spec.replicas}' 3
wait_jsonpath stream/events '{.status.openShardCount}' 6
wait_jsonpath stream/events '{.status.readyReplicas}' 3
kubectl -n "$ns" wait --for=condition=Ready stream/events --timeout=300s
[[ "$(count_events)" == 20 ]] || fail "records of events were lost in the reshard"
kill "$pf2" 2>/dev/null || true
kubectl -n "$ns" delete stream/events --wait --timeout=120s

log "Deleting everything"
kubectl -n "$ns" delete streamconsumer/orders-dashboard --wait --timeout=120s
kill "$pf" 2>/dev/null || true
kubectl -n "$ns" delete stream/orders --wait --timeout=120s
for _ in $(seq 1 60); do
  kubectl -n "$ns" get statefulset/orders >/dev/null 2>&1 || break
  sleep 2
done
! kubectl -n "$ns" get statefulset/orders >/dev/null 2>&1 || fail "the StatefulSet outlived its Stream"
kubectl delete namespace "$ns" --wait --timeout=120s

if [[ "${CLEANUP:-0}" == 1 && "$kind_mode" == 1 ]]; then
  kind delete cluster --name "$cluster"
fi
log "PASS"
