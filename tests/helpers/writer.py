"""An app writing to a SQLite database from its own process (used by the end-to-end tests).

usage: writer.py DB PHASE SEED MARKS_FILE
Runs a mixed workload (inserts, updates, deletes, a growing and a shrinking
database, a VACUUM) and appends {"time": ms, "digest": ...} lines to MARKS_FILE
at quiet moments, each followed by a pause so a capture can happen.
"""
import hashlib, json, random, sqlite3, sys, time

db, phase, seed, marks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rnd = random.Random(seed)
con = sqlite3.connect(db, isolation_level=None, timeout=30)
con.execute("PRAGMA busy_timeout=30000")
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")

def digest():
    h = hashlib.sha256()
    for table in ("items", "log"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY id"):
            h.update(repr(row).encode())
    return h.hexdigest()

def mark(label):
    # quiet on both sides: the replicator captures the mark's last commit (a file boundary,
    # created before the recorded time) with room to spare on a loaded machine
    time.sleep(0.6)
    with open(marks, "a") as f:
        f.write(json.dumps({"label": label, "time": int(time.time() * 1000), "digest": digest()}) + "\n")
    time.sleep(0.6)

def tx(n):
    for _ in range(n):
        con.execute("BEGIN")
        r = rnd.random()
        if r < 0.6:
            con.execute("INSERT INTO items (name, body, n) VALUES (?, ?, ?)",
                        (f"item-{rnd.randrange(1 << 30)}", rnd.randbytes(rnd.randrange(10, 3000)), rnd.randrange(1000)))
        elif r < 0.85:
            con.execute("UPDATE items SET n = n + 1, name = name || 'x' WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 3)")
        else:
            con.execute("DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 2)")
        con.execute("INSERT INTO log (at, what) VALUES (?, ?)", (time.time(), "tx"))
        con.execute("COMMIT")

if phase == "main":
    tx(800)
    mark("after-800")
    # grow a lot
    con.execute("BEGIN")
    for i in range(400):
        con.execute("INSERT INTO items (name, body, n) VALUES (?, ?, ?)", (f"big-{i}", rnd.randbytes(4000), i))
    con.execute("COMMIT")
    tx(400)
    mark("grown")
    # shrink: delete most rows and VACUUM
    con.execute("DELETE FROM items WHERE id % 5 != 0")
    con.execute("VACUUM")
    mark("vacuumed")
    tx(800)
    mark("end")
elif phase == "more":
    tx(300)
    mark("more")
elif phase == "burst":
    # as fast as it can for 3 s, small transactions, the app's own autocheckpoint on
    end = time.monotonic() + 3
    n = 0
    while time.monotonic() < end:
        con.execute("BEGIN")
        con.execute("INSERT INTO log (at, what) VALUES (?, ?)", (time.time(), "burst-%d" % n))
        if n % 50 == 0:
            con.execute("UPDATE items SET n = n + 1 WHERE id IN (SELECT id FROM items LIMIT 5)")
        con.execute("COMMIT")
        n += 1
    mark("burst-%d" % n)
elif phase == "truncate":
    tx(200)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    mark("truncated")
con.close()
