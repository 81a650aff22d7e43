// The AWS SDK for JavaScript v3: HTTP/2 for every call (h2c here, h2 over TLS), and enhanced
// fan-out with SubscribeToShard following ChildShards across a split and a merge.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateStreamCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SplitShardCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";
import { client, startServer } from "./harness.mjs";

async function setup(kinesis, name, shards) {
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  const streamArn = summary.StreamDescriptionSummary.StreamARN;
  const reg = await kinesis.send(
    new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: "efo" }),
  );
  const arn = reg.Consumer.ConsumerARN;
  for (;;) {
    const d = await kinesis.send(new DescribeStreamConsumerCommand({ ConsumerARN: arn }));
    if (d.ConsumerDescription.ConsumerStatus === "ACTIVE") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return arn;
}

async function put(kinesis, name, tag, n) {
  const Records = [];
  for (let i = 0; i < n; i++) {
    Records.push({ PartitionKey: `${tag}-${i}`, Data: new TextEncoder().encode(`${tag}-${i}`) });
  }
  const out = await kinesis.send(new PutRecordsCommand({ StreamName: name, Records }));
  assert.equal(out.FailedRecordCount, 0);
  return Records.map((r) => r.PartitionKey);
}

// Reads one shard over SubscribeToShard until `stop()` says so or the shard ends; returns the
// records and the children named at the end.
async function subscribe(kinesis, consumerArn, shardId, startingPosition, stop) {
  const out = await kinesis.send(
    new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: shardId, StartingPosition: startingPosition }),
  );
  const records = [];
  let children = null;
  let continuation = null;
  for await (const event of out.EventStream) {
    const e = event.SubscribeToShardEvent;
    if (!e) continue;
    for (const r of e.Records) records.push(new TextDecoder().decode(r.Data));
    continuation = e.ContinuationSequenceNumber;
    assert.equal(typeof e.MillisBehindLatest, "number");
    if (e.ChildShards && e.ChildShards.length > 0) {
      children = e.ChildShards;
      break;
    }
    if (stop && stop(records)) break;
  }
  return { records, children, continuation };
}

test("every call works over h2c and subscriptions deliver all records", async () => {
  const server = await startServer();
  try {
    const kinesis = client(server.api);
    const arn = await setup(kinesis, "efo-basic", 2);
    const written = await put(kinesis, "efo-basic", "a", 200);
    const shards = (await kinesis.send(new ListShardsCommand({ StreamName: "efo-basic" }))).Shards;
    const seen = [];
    for (const s of shards) {
      // The shard's records were all written already: stop once an event arrives with nothing
      // new after the backlog (an idle heartbeat comes within 5 s).
      let last = -1;
      const { records } = await subscribe(kinesis, arn, s.ShardId, { Type: "TRIM_HORIZON" }, (recs) => {
        const done = recs.length === last;
        last = recs.length;
        return done;
      });
      seen.push(...records);
    }
    assert.deepEqual([...seen].sort(), [...written].sort());
  } finally {
    await server.stop();
  }
});

test("a subscriber follows ChildShards across a split and a merge without loss or repeats", async () => {
  const server = await startServer();
  try {
    const kinesis = client(server.api);
    const name = "efo-lineage";
    const arn = await setup(kinesis, name, 1);
    const written = [];
    written.push(...(await put(kinesis, name, "before", 50)));
    // Subscribe to the only shard; reshard while it is being read.
    const reading = subscribe(kinesis, arn, "shardId-000000000000", { Type: "TRIM_HORIZON" });
    await new Promise((r) => setTimeout(r, 200));
    await kinesis.send(
      new SplitShardCommand({
        StreamName: name,
        ShardToSplit: "shardId-000000000000",
        NewStartingHashKey: (1n << 127n).toString(),
      }),
    );
    written.push(...(await put(kinesis, name, "split", 50)));
    const first = await reading;
    assert.ok(first.children, "the closed shard's last event names its children");
    assert.deepEqual(
      first.children.map((c) => c.ShardId),
      ["shardId-000000000001", "shardId-000000000002"],
    );
    assert.deepEqual(first.children[0].ParentShards, ["shardId-000000000000"]);

    await kinesis.send(
      new MergeShardsCommand({
        StreamName: name,
        ShardToMerge: "shardId-000000000001",
        AdjacentShardToMerge: "shardId-000000000002",
      }),
    );
    written.push(...(await put(kinesis, name, "merged", 50)));

    const seen = [...first.records];
    for (const child of ["shardId-000000000001", "shardId-000000000002"]) {
      const r = await subscribe(kinesis, arn, child, { Type: "TRIM_HORIZON" });
      assert.deepEqual(r.children.map((c) => c.ShardId), ["shardId-000000000003"]);
      seen.push(...r.records);
    }
    let last = -1;
    const merged = await subscribe(kinesis, arn, "shardId-000000000003", { Type: "TRIM_HORIZON" }, (recs) => {
      const done = recs.length === last && recs.length >= 50;
      last = recs.length;
      return done;
    });
    seen.push(...merged.records);
    assert.equal(seen.length, written.length, "no record lost or repeated");
    assert.deepEqual([...seen].sort(), [...written].sort());
  } finally {
    await server.stop();
  }
});

test("resubscribing within five seconds is refused with ResourceInUseException", async () => {
  const server = await startServer();
  try {
    const kinesis = client(server.api);
    const arn = await setup(kinesis, "efo-rule", 1);
    const first = await kinesis.send(
      new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } }),
    );
    await assert.rejects(
      kinesis.send(
        new SubscribeToShardCommand({ ConsumerARN: arn, ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } }),
      ),
      (e) => e.name === "ResourceInUseException",
    );
    // The first subscription is still delivering events.
    for await (const event of first.EventStream) {
      assert.ok(event.SubscribeToShardEvent);
      break;
    }
  } finally {
    await server.stop();
  }
});

test("subscribing with a missing consumer is an ordinary 400 error", async () => {
  const server = await startServer();
  try {
    const kinesis = client(server.api);
    await kinesis.send(new CreateStreamCommand({ StreamName: "efo-missing", ShardCount: 1 }));
    await assert.rejects(
      kinesis.send(
        new SubscribeToShardCommand({
          ConsumerARN: "arn:aws:kinesis:us-east-1:000000000000:stream/efo-missing/consumer/none:1",
          ShardId: "shardId-000000000000",
          StartingPosition: { Type: "LATEST" },
        }),
      ),
      (e) => e.name === "ResourceNotFoundException" && e.$metadata.httpStatusCode === 400,
    );
  } finally {
    await server.stop();
  }
});

test("a subscription ends at its lifetime and resumes from its continuation number", async () => {
  // A 6-second lifetime stands in for AWS's 5 minutes.
  const server = await startServer(["--in-memory", "--no-limits", "--subscription-lifetime-ms", "6000"]);
  try {
    const kinesis = client(server.api);
    const arn = await setup(kinesis, "efo-lifetime", 1);
    const written = await put(kinesis, "efo-lifetime", "x", 20);
    const started = Date.now();
    const first = await subscribe(kinesis, arn, "shardId-000000000000", { Type: "TRIM_HORIZON" });
    const lasted = Date.now() - started;
    assert.ok(lasted >= 5500 && lasted < 15000, `the stream ended after its lifetime (${lasted} ms)`);
    assert.equal(first.children, null, "an open shard's subscription ends without ChildShards");
    assert.deepEqual(first.records, written);
    const more = await put(kinesis, "efo-lifetime", "y", 5);
    const second = await subscribe(
      kinesis,
      arn,
      "shardId-000000000000",
      { Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: first.continuation },
      (recs) => recs.length >= 5,
    );
    assert.deepEqual(second.records, more, "resuming after the continuation number repeats nothing");
  } finally {
    await server.stop();
  }
});
