"""An application writing through redis-py's RedisCluster while a drill fails shards over.

For test_redis_failover.py and scripts/bench.sh (step redisfailover). Run by the interpreter of
the caller with redis-py 8.2 first on PYTHONPATH. Parameters as JSON in argv[1], the password in
REDIS_PASSWORD (never on a command line):
  host, port          a node to start from (on a host the drill leaves running)
  ca, user, name      TLS CA file, ACL user, CLIENT SETNAME
  tags                hash tags, one per shard: every key of a tag is written to that shard
  status              a file rewritten about every 0.2 s: {"accepted": n, "last_ok": {tag: time}}
  socket_timeout      seconds a request may hang on a node that stopped answering (also the
                      connect timeout); an application must set one: redis-py 8.2 waits 5 s by
                      default, Debian 12's redis-py 4.3 forever
  wait_ms             timeout of the WAIT that follows each SET

Writes one key after the other, in turn to each tag, as a single-threaded application does,
until SIGTERM; then reads every key back, deletes them and prints one JSON line:
  accepted            writes the client saw succeed: SET answered OK (redis-py retries a failed
                      request itself, 10 times, refreshing the slot map; what still failed is
                      counted in errors, and the loop goes on with the next key)
  confirmed           accepted writes that the WAIT 1 sent right after, on the same connection,
                      confirmed on a replica: the only writes Redis's asynchronous replication
                      promises to keep when the primary is lost
  shard_gaps          [tag, start, end] (Unix time) of every time longer than 0.5 s a shard went
                      without an accepted write: the outage of that shard as the client saw it,
                      plus at most one round of the loop over the shards (milliseconds, and the
                      WAITs that time out on shards without a replica: up to 6 x wait_ms)
  stalls              [start, end] of every wait longer than 0.1 s for the next write to be
                      accepted, from the end of the previous accepted write (its SET and WAIT) to
                      the end of the SET: how long the loop itself was held up
  lost_confirmed      confirmed keys not read back with their value (the first 20), and counts
  lost_accepted       accepted but unconfirmed keys not read back (count only: not a promise)
"""

import json
import os
import signal
import sys
import time

import redis
from redis.cluster import ClusterNode, RedisCluster

STALL = 0.1
SHARD_GAP = 0.5
STOP = []  # SIGTERM appends to it: the loop ends after the write in progress


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def write_status(path, accepted, last_ok):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"accepted": accepted, "last_ok": last_ok}, f)
    os.replace(tmp, path)


def retried(call, attempts=20):
    """After the drill the cluster is ok again; a read still retries a refresh's hiccup."""
    for attempt in range(attempts):
        try:
            return call()
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def main():
    args = json.loads(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda _signum, _frame: STOP.append(True))
    cluster = RedisCluster(startup_nodes=[ClusterNode(args["host"], args["port"])],
                           username=args["user"], password=os.environ["REDIS_PASSWORD"], ssl=True,
                           ssl_ca_certs=args["ca"], client_name=args["name"],
                           socket_timeout=args["socket_timeout"], socket_connect_timeout=args["socket_timeout"])
    tags = args["tags"]
    written = {tag: [] for tag in tags}  # (n, confirmed) of each accepted write
    errors = {}
    stalls, shard_gaps = [], []
    last_ok = {}
    previous = None
    status_at = 0.0
    n = 0
    while not STOP:
        tag = tags[n % len(tags)]
        key = "ai:failover:{%s}:%d" % (tag, n)
        try:
            accepted = cluster.set(key, n)
        except Exception as error:  # an application catches, logs and goes on
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            time.sleep(0.05)
            accepted = False
        if accepted:
            now = time.time()
            if previous is not None and now - previous > STALL:
                stalls.append([previous, now])
            if tag in last_ok and now - last_ok[tag] > SHARD_GAP:
                shard_gaps.append([tag, last_ok[tag], now])
            last_ok[tag] = now
            # WAIT goes to the node that just answered the SET, on the same connection (the
            # node's pool hands back the connection it was given: this loop uses one at a time);
            # it counts the replicas that have every write of that connection.
            try:
                replicas = cluster.wait(1, args["wait_ms"], target_nodes=cluster.get_node_from_key(key))
                if isinstance(replicas, dict):  # a reply per node, should a version not sum them
                    replicas = sum(replicas.values())
                confirmed = int(replicas) >= 1
            except Exception as error:
                errors["WAIT " + type(error).__name__] = errors.get("WAIT " + type(error).__name__, 0) + 1
                confirmed = False
            written[tag].append((n, confirmed))
            # the next write's wait starts now: a WAIT that times out on a shard without a
            # replica (the new primaries until the old ones return) is not part of the outage
            previous = time.time()
            if now - status_at > 0.2:
                write_status(args["status"], sum(len(w) for w in written.values()), last_ok)
                status_at = now
        n += 1
    write_status(args["status"], sum(len(w) for w in written.values()), last_ok)

    lost_confirmed, lost_accepted = [], 0
    for tag, writes in written.items():
        for i in range(0, len(writes), 500):
            chunk = writes[i:i + 500]
            keys = ["ai:failover:{%s}:%d" % (tag, k) for k, _value in chunk]
            values = retried(lambda keys=keys: cluster.mget(keys))  # one slot: one MGET
            for (k, confirmed), key, value in zip(chunk, keys, values):
                if text(value) != str(k):
                    if confirmed:
                        lost_confirmed.append(key)
                    else:
                        lost_accepted += 1
            retried(lambda keys=keys: cluster.unlink(*keys))
    cluster.close()
    print(json.dumps({
        "version": redis.__version__,
        "accepted": sum(len(w) for w in written.values()),
        "confirmed": sum(1 for w in written.values() for _key, c in w if c),
        "shard_gaps": shard_gaps,
        "stalls": stalls,
        "errors": errors,
        "lost_confirmed": lost_confirmed[:20],
        "lost_confirmed_count": len(lost_confirmed),
        "lost_accepted_count": lost_accepted,
    }))


if __name__ == "__main__":
    main()
