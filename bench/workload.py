"""The app in the replication benchmarks: writes to a SQLite database from its own process.

usage:
  workload.py DB init
  workload.py DB burst SECONDS            small transactions as fast as possible; prints {"commits": N}
  workload.py DB paced RATE SECONDS OUT   RATE commits/s; each commit writes a heartbeat "SEQ:<n>"
                                          and OUT gets one line "<n> <commit time ms>" per commit
  workload.py DB bulk TXNS [nockpt]       TXNS transactions of 16 x 1000-byte rows, then a last
                                          heartbeat; with nockpt the app never checkpoints and
                                          prints the WAL size (the exact bytes of frames written)
  workload.py DB fill MB                  grows the rows table to about MB megabytes (one-off setup)
  workload.py DB rate RATE SECONDS        one 200-byte row per commit at RATE commits/s (0: as fast
                                          as possible); prints commits, tx/s and commit latency
                                          percentiles (BEGIN to COMMIT returned, ms)
  workload.py DB big TXNS KIB             TXNS transactions of one KIB-KiB row each, as fast as
                                          possible; prints the same figures

Heartbeats are written with secure_delete on, so the newest "SEQ:" in any copy of the
heartbeat page is the last commit that copy contains.
"""
import json, os, random, sqlite3, sys, time

db, mode = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db, isolation_level=None, timeout=30)
con.execute("PRAGMA busy_timeout=30000")
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("PRAGMA secure_delete=ON")


def beat(seq):
    con.execute("UPDATE beat SET v = ? WHERE id = 1", ("SEQ:%010d" % seq,))


if mode == "init":
    con.execute("CREATE TABLE beat (id INTEGER PRIMARY KEY, v TEXT)")
    con.execute("INSERT INTO beat VALUES (1, 'SEQ:0000000000')")
    con.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, v BLOB)")
elif mode == "burst":
    seconds = float(sys.argv[3])
    rnd = random.Random(1)
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            con.execute("BEGIN")
            con.execute("INSERT INTO rows (v) VALUES (?)", (rnd.randbytes(100),))
            con.execute("COMMIT")
        n += 100
    print(json.dumps({"commits": n, "seconds": seconds}))
elif mode == "paced":
    rate, seconds, out = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    rnd = random.Random(2)
    lines = []
    start = time.monotonic()
    seq = 0
    while True:
        due = start + seq / rate
        now = time.monotonic()
        if now - start >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        seq += 1
        con.execute("BEGIN")
        con.execute("INSERT INTO rows (v) VALUES (?)", (rnd.randbytes(200),))
        beat(seq)
        con.execute("COMMIT")
        lines.append("%d %.3f" % (seq, time.time() * 1000))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps({"commits": seq}))
elif mode == "bulk":
    txns = int(sys.argv[3])
    if len(sys.argv) > 4 and sys.argv[4] == "nockpt":
        con.execute("PRAGMA wal_autocheckpoint=0")
    rnd = random.Random(3)
    for i in range(txns):
        con.execute("BEGIN")
        for _ in range(16):
            con.execute("INSERT INTO rows (v) VALUES (?)", (rnd.randbytes(1000),))
        con.execute("COMMIT")
    con.execute("BEGIN")
    beat(txns)
    con.execute("COMMIT")
    print(json.dumps({"commits": txns + 1, "walBytes": os.path.getsize(db + "-wal")}))
elif mode == "fill":
    mb = float(sys.argv[3])
    rnd = random.Random(4)
    def size():
        return con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
    while size() < mb * 1e6:
        con.execute("BEGIN")
        for _ in range(1000):
            con.execute("INSERT INTO rows (v) VALUES (?)", (rnd.randbytes(1000),))
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
elif mode in ("rate", "big"):
    if mode == "rate":
        rate, seconds = float(sys.argv[3]), float(sys.argv[4])
        txns, size = None, 200
    else:
        rate, seconds = 0.0, None
        txns, size = int(sys.argv[3]), int(sys.argv[4]) * 1024
    rnd = random.Random(5)
    lat = []
    start = time.monotonic()
    seq = 0
    while True:
        if txns is not None and seq >= txns:
            break
        now = time.monotonic()
        if seconds is not None and now - start >= seconds:
            break
        if rate > 0:
            due = start + seq / rate
            if due > now:
                time.sleep(due - now)
        seq += 1
        payload = rnd.randbytes(size)
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO rows (v) VALUES (?)", (payload,))
        con.execute("COMMIT")
        lat.append(time.perf_counter() - t0)
    elapsed = time.monotonic() - start
    lat.sort()
    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3)
    print(json.dumps({"commits": seq, "seconds": elapsed, "txPerSec": seq / elapsed,
                      "p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999), "max": pct(1.0),
                      "walBytes": os.path.getsize(db + "-wal")}))
else:
    sys.exit("unknown mode " + mode)
