# The syscalls vidkeep's local publish adds, timed on this disk: write a file of SIZE bytes
# into .staging/, fsync it, rename it to YYYY/MM/DD/<job>/video.mp4, fsync the 5 folders up to the
# root (vidkeep adds: the file fsync and the 5 folder fsyncs). Same without the fsyncs.
import os, sys, time, tempfile, statistics
size = int(sys.argv[1]) if len(sys.argv) > 1 else 8 * 1024 * 1024
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
root = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR", "/var/tmp"))
data = os.urandom(size)
def one(i, sync):
    os.makedirs(f"{root}/.staging", exist_ok=True)
    staged = f"{root}/.staging/{i}"
    with open(staged, "wb") as f:
        f.write(data)
        if sync: os.fsync(f.fileno())
    folder = f"{root}/2026/12/01/job-{sync}-{i}"
    os.makedirs(folder)
    os.rename(staged, f"{folder}/video.mp4")
    if sync:
        d = folder
        while True:
            fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)
            if d == root: break
            d = os.path.dirname(d)
for sync in (False, True):
    times = []
    for i in range(runs):
        t = time.perf_counter(); one(i, sync); times.append((time.perf_counter() - t) * 1000)
    print(f"fsync={sync}: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {runs} x {size} bytes")
