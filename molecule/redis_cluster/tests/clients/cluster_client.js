// One application session through ioredis's Cluster, for test_redis_clients.py.
//
// Run with the ioredis under test on NODE_PATH. Takes its parameters as JSON in argv[2] and the
// password from REDIS_PASSWORD (never on a command line); prints what it saw as JSON on stdout.
"use strict";
const fs = require("fs");
const Redis = require("ioredis");

const args = JSON.parse(process.argv[2]);
// ioredis says on the console when its ready check (INFO) is refused and goes on without it
const warnings = [];
console.warn = (...parts) => warnings.push(parts.join(" "));

function cluster(scaleReads) {
  return new Redis.Cluster([{ host: args.host, port: args.port }], {
    scaleReads,
    clusterRetryStrategy: () => null,
    redisOptions: {
      username: args.user,
      password: process.env.REDIS_PASSWORD,
      tls: { ca: fs.readFileSync(args.ca) },
      connectionName: args.name,
    },
  });
}

async function main() {
  const seen = { version: require("ioredis/package.json").version };
  const client = cluster("master");
  // the ready check: CLUSTER INFO for the cluster, INFO on each node's connection
  await new Promise((resolve, reject) => {
    client.once("ready", resolve);
    client.once("error", reject);
  });
  seen.primaries = client.nodes("master").map((n) => `${n.options.host}:${n.options.port}`).sort();
  seen.name = await client.client("GETNAME");
  const info = await client.info("server");
  seen.redis_version = /redis_version:(\S+)/.exec(info)[1];
  seen.written = {};
  for (const key of args.keys) {
    await client.set(key, args.value);
    seen.written[key] = await client.get(key);
  }
  // a second client that reads from replicas: it sends READONLY on their connections
  const reader = cluster("slave");
  seen.replica_reads = {};
  for (const key of args.keys) {
    const deadline = Date.now() + 10000;
    let value = await reader.get(key);
    while (value !== args.value && Date.now() < deadline) { // replication is asynchronous
      await new Promise((r) => setTimeout(r, 200));
      value = await reader.get(key);
    }
    seen.replica_reads[key] = value;
  }
  reader.disconnect();
  seen.refused = {};
  for (const [name, command] of Object.entries(args.refused)) {
    try {
      await client.call(...command);
      seen.refused[name] = "accepted";
    } catch (error) {
      seen.refused[name] = `${error.name}: ${error.message}`;
    }
  }
  client.disconnect();
  seen.warnings = warnings;
  process.stdout.write(JSON.stringify(seen) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\nwarnings: ${JSON.stringify(warnings)}\n`);
  process.exit(1);
});
