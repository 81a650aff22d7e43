// The JS v3 SDK over TLS: h2 negotiated by ALPN on the TLS listener, with the self-signed
// certificate the server generates when none is configured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:http2";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";
import { client, startServer } from "./harness.mjs";

// The generated certificate is self-signed; trust it for this process only.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

test("the TLS listener negotiates h2 and serves the API and SubscribeToShard", async () => {
  const server = await startServer(["--in-memory", "--no-limits", "--tls-listen", "127.0.0.1:0"]);
  try {
    assert.ok(server.tls, "the start line names the TLS address");
    // ALPN picks h2.
    const session = connect(server.tls, { rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      session.once("connect", resolve);
      session.once("error", reject);
    });
    assert.equal(session.alpnProtocol, "h2");
    session.close();

    const kinesis = client(server.tls);
    await kinesis.send(new CreateStreamCommand({ StreamName: "tls", ShardCount: 1 }));
    const put = await kinesis.send(
      new PutRecordCommand({ StreamName: "tls", PartitionKey: "k", Data: new TextEncoder().encode("secure") }),
    );
    assert.equal(put.ShardId, "shardId-000000000000");
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "tls" }));
    const reg = await kinesis.send(
      new RegisterStreamConsumerCommand({
        StreamARN: summary.StreamDescriptionSummary.StreamARN,
        ConsumerName: "tls-consumer",
      }),
    );
    const out = await kinesis.send(
      new SubscribeToShardCommand({
        ConsumerARN: reg.Consumer.ConsumerARN,
        ShardId: "shardId-000000000000",
        StartingPosition: { Type: "TRIM_HORIZON" },
      }),
    );
    for await (const event of out.EventStream) {
      const records = event.SubscribeToShardEvent?.Records ?? [];
      if (records.length > 0) {
        assert.equal(new TextDecoder().decode(records[0].Data), "secure");
        break;
      }
    }
  } finally {
    await server.stop();
  }
});
