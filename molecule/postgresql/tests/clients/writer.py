"""A client that writes through the read-write endpoint for a while, one transaction at a time, and
logs what it saw: "ok <id> <time>" only after COMMIT returned (an acknowledged write), "err <time>
<message>" for a failed attempt. Used by the failover drills (test_50_failover_drill.py).

    python3 writer.py SECONDS LOGFILE CONNINFO
The password comes from ~/.pgpass, never from the command line.
"""

import sys
import time

import psycopg2

seconds, logfile, conninfo = float(sys.argv[1]), sys.argv[2], sys.argv[3]
end = time.time() + seconds
next_id = 1
conn = None
with open(logfile, "w", buffering=1, encoding="utf-8") as log:
    while time.time() < end:
        try:
            if conn is None:
                conn = psycopg2.connect(conninfo)
            with conn.cursor() as cur:
                cur.execute("INSERT INTO drill_writes (id) VALUES (%s)", (next_id,))
            conn.commit()
            log.write("ok %d %.3f\n" % (next_id, time.time()))
            next_id += 1
            time.sleep(0.05)
        except psycopg2.Error as error:
            log.write("err %.3f %s\n" % (time.time(), str(error).strip().replace("\n", " ")[:200]))
            try:
                if conn is not None:
                    conn.close()
            except psycopg2.Error:
                pass
            conn = None
            # The id may or may not have been committed: it is not counted, and not reused.
            next_id += 1
            time.sleep(0.2)
    log.write("done %.3f\n" % time.time())
