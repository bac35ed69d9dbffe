"""One application session through redis-py's RedisCluster, for test_redis_clients.py.

Run by the interpreter of the test run with the redis-py under test first on PYTHONPATH. Takes
its parameters as JSON in argv[1] and the password from REDIS_PASSWORD (never on a command line);
prints what it saw as JSON on stdout. Works with redis-py 4.3 (Debian 12's python3-redis) and 8.x.
"""

import json
import os
import sys
import time

import redis
from redis.cluster import ClusterNode, RedisCluster


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def replica_reader(args, common):
    """A second client that reads from replicas: it sends READONLY on their connections."""
    try:
        from redis.cluster import LoadBalancingStrategy  # redis-py 5.3 and later
    except ImportError:
        return RedisCluster(startup_nodes=[ClusterNode(args["host"], args["port"])], read_from_replicas=True, **common)
    return RedisCluster(startup_nodes=[ClusterNode(args["host"], args["port"])],
                        load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS, **common)


def main():
    args = json.loads(sys.argv[1])
    common = {"username": args["user"], "password": os.environ["REDIS_PASSWORD"], "ssl": True,
              "ssl_ca_certs": args["ca"], "client_name": args["name"]}
    seen = {"version": redis.__version__}
    # connecting reads the slot map (CLUSTER SLOTS), redis-py 4.3 first asks INFO whether cluster
    # mode is on, and every connection sends CLIENT SETNAME
    cluster = RedisCluster(startup_nodes=[ClusterNode(args["host"], args["port"])], **common)
    seen["primaries"] = sorted(f"{node.host}:{node.port}" for node in cluster.get_primaries())
    seen["name"] = text(cluster.client_getname(target_nodes=RedisCluster.RANDOM))
    seen["redis_version"] = cluster.info("server", target_nodes=RedisCluster.RANDOM)["redis_version"]
    seen["written"] = {}
    for key in args["keys"]:
        cluster.set(key, args["value"])
        seen["written"][key] = text(cluster.get(key))
    reader = replica_reader(args, common)
    seen["replica_reads"] = {}
    for key in args["keys"]:
        deadline = time.monotonic() + 10
        value = text(reader.get(key))
        while value != args["value"] and time.monotonic() < deadline:  # replication is asynchronous
            time.sleep(0.2)
            value = text(reader.get(key))
        seen["replica_reads"][key] = value
    reader.close()
    seen["refused"] = {}
    for name, command in args["refused"].items():
        try:
            cluster.execute_command(*command, target_nodes=RedisCluster.RANDOM)
            seen["refused"][name] = "accepted"
        except redis.exceptions.ResponseError as error:
            seen["refused"][name] = f"{type(error).__name__}: {error}"
    cluster.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
