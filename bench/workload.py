"""The app in the replication benchmarks: writes to a SQLite database from its own process.

usage:
  workload.py DB init
  workload.py DB burst SECONDS            small transactions as fast as possible; prints {"commits": N}
  workload.py DB paced RATE SECONDS OUT   RATE commits/s; each commit writes a heartbeat "SEQ:<n>"
                                          and OUT gets one line "<n> <commit time ms>" per commit
  workload.py DB bulk TXNS [nockpt]       TXNS transactions of 16 x 1000-byte rows, then a last
                                          heartbeat; with nockpt the app never checkpoints and
                                          prints the WAL size (the exact bytes of frames written)

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
else:
    sys.exit("unknown mode " + mode)
