// Starts the real tributary binary on port 0 and builds a JS v3 Kinesis client for it.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { KinesisClient } from "@aws-sdk/client-kinesis";

const here = dirname(fileURLToPath(import.meta.url));

export function binary() {
  if (process.env.TRIBUTARY_BIN) return process.env.TRIBUTARY_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(here, "..", "..", "target");
  const bin = join(target, "debug", "tributary");
  if (!existsSync(bin)) throw new Error(`build tributary first (${bin} missing)`);
  return bin;
}

export async function startServer(args = ["--in-memory", "--no-limits"]) {
  const child = spawn(
    binary(),
    ["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", ...args],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TRIBUTARY_LOG: "warn" } },
  );
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const field = (name) => {
    const word = line.split(" ").find((w) => w.startsWith(name));
    return word === undefined ? undefined : word.slice(name.length);
  };
  return {
    api: `http://${field("api=")}`,
    metrics: `http://${field("metrics=")}`,
    tls: field("tls=") ? `https://${field("tls=")}` : undefined,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
}

export function client(endpoint) {
  return new KinesisClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
    maxAttempts: 1,
  });
}
