#!/usr/bin/env python3
"""The peer for bench/intake.sh: a minimal script doing intake's durable work for N specs.

For each spec file: read it, parse the JSON, SHA-256 it, insert a job row into SQLite (WAL,
synchronous=FULL), rename the file into processing/, record the move. `batch` = 1 commits twice
per file (the naive script); `batch` = 1000 commits twice per 1,000 files.

    python3 bench/intake_naive.py DIR N BATCH
"""
import hashlib
import json
import os
import sqlite3
import sys
import time
import uuid

d, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
inbox, processing = os.path.join(d, "inbox"), os.path.join(d, "inbox", "processing")
os.makedirs(processing)
for i in range(n):
    with open(os.path.join(inbox, f"spec-{i:06d}.json"), "w") as f:
        json.dump({"model": "viduq1-text", "prompt": f"benchmark spec number {i}: a harbour at dawn"}, f)
db = sqlite3.connect(os.path.join(d, "catalog.sqlite"), isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, spec_name TEXT, sha256 TEXT, model TEXT, prompt TEXT, place TEXT)")
t0, cpu0 = time.monotonic(), time.process_time()
names = sorted(e.name for e in os.scandir(inbox) if e.is_file())
for start in range(0, len(names), batch):
    chunk = names[start:start + batch]
    ids = []
    db.execute("BEGIN IMMEDIATE")
    for name in chunk:
        with open(os.path.join(inbox, name), "rb") as f:
            raw = f.read()
        spec = json.loads(raw)
        job = str(uuid.uuid4())
        ids.append(job)
        db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 'inbox')",
                   (job, name, hashlib.sha256(raw).hexdigest(), spec["model"], spec["prompt"]))
    db.execute("COMMIT")
    for name in chunk:
        os.rename(os.path.join(inbox, name), os.path.join(processing, name))
    db.execute("BEGIN IMMEDIATE")
    db.executemany("UPDATE jobs SET place = 'processing' WHERE id = ?", [(j,) for j in ids])
    db.execute("COMMIT")
wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
print(f"naive script, {batch} file(s) per commit pair: {n} specs in {wall:.2f} s, CPU {cpu:.2f} s")
