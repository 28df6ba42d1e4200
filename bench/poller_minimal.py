"""The least a client of the video API can do, as the peer of bench/schedule.sh: keep LIMIT tasks
in flight, poll each one every POLL_MS, and on success download its video and cover (SHA-256 on
the way, written to OUT) before submitting the next. No catalogue, no durability, no retries:
the floor a scheduler is measured against. Prints the wall time in seconds.

    python3 bench/poller_minimal.py HOST:PORT OUT N LIMIT POLL_MS
"""

import asyncio
import hashlib
import http.client
import json
import os
import sys
import time

KEY = "sim-key.sim-secret"


def call(host, method, path, body=None):
    conn = http.client.HTTPConnection(host, timeout=60)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, data


def fetch(url, out):
    host, path = url.split("://", 1)[1].split("/", 1)
    conn = http.client.HTTPConnection(host, timeout=60)
    conn.request("GET", "/" + path)
    answer = conn.getresponse()
    digest = hashlib.sha256()
    with open(out, "wb") as f:
        while chunk := answer.read(1 << 20):
            digest.update(chunk)
            f.write(chunk)
    conn.close()
    return digest.hexdigest()


async def one(host, out, i, poll):
    body = {"model": "viduq1-text", "prompt": f"scheduler benchmark: a lantern on a quay, number {i}"}
    status, data = await asyncio.to_thread(call, host, "POST", "/api/paas/v4/videos/generations", body)
    if status != 200:
        raise SystemExit(f"submit {i}: HTTP {status} {data[:200]!r}")
    task = json.loads(data)["id"]
    while True:
        await asyncio.sleep(poll)
        status, data = await asyncio.to_thread(call, host, "GET", f"/api/paas/v4/async-result/{task}")
        answer = json.loads(data)
        if answer.get("task_status") == "SUCCESS":
            result = answer["video_result"][0]
            await asyncio.to_thread(fetch, result["url"], os.path.join(out, f"{task}.mp4"))
            await asyncio.to_thread(fetch, result["cover_image_url"], os.path.join(out, f"{task}.jpeg"))
            return
        if answer.get("task_status") == "FAIL":
            raise SystemExit(f"task {task} failed")


async def main():
    host, out, n, limit, poll_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    os.makedirs(out, exist_ok=True)
    slots = asyncio.Semaphore(limit)

    async def bounded(i):
        async with slots:
            await one(host, out, i, poll_ms / 1000)

    t0 = time.monotonic()
    await asyncio.gather(*(bounded(i) for i in range(n)))
    print(f"{time.monotonic() - t0:.3f}")


asyncio.run(main())
