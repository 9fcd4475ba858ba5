"""A python program for `ckpt run`: works, waits to be checkpointed, works on.

    python3 worker.py CONTROL_DIR

Writes marker CONTROL_DIR/ready (pid=...) once set up, keeps a worker
thread and the main thread busy until CONTROL_DIR/go exists (60 s at most,
then exit 97), then prints results that do not depend on timing.
Everything on stdout is deterministic.
"""
import hashlib
import os
import sys
import threading
import time

ctl = sys.argv[1]


def marker(name, text):
    tmp = os.path.join(ctl, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(ctl, name))


data = {f"k{i}": i * i for i in range(2000)}
h = hashlib.sha256()
for k in sorted(data):
    h.update(f"{k}={data[k]}".encode())
print("phase1", h.hexdigest(), len(data))

scratch = open(os.path.join(ctl, "py_scratch.txt"), "w+")
scratch.write("x" * 1234)
scratch.flush()
scratch.seek(100)

stop = threading.Event()
counts = {"worker": 0}


def worker():
    # Busy with the interpreter (allocations, the GIL) until told to stop.
    acc = []
    while not stop.is_set():
        acc.append(sum(range(1000)))
        if len(acc) > 1000:
            acc.clear()
        counts["worker"] += 1
        time.sleep(0.001)


t = threading.Thread(target=worker, name="py-worker")
t.start()
marker("ready", f"pid={os.getpid()}\n")

deadline = time.monotonic() + 60
go = os.path.join(ctl, "go")
spins = 0
while not os.path.exists(go):
    spins += 1
    time.sleep(0.005)
    if time.monotonic() > deadline:
        stop.set()
        print("timed out waiting for go", file=sys.stderr)
        sys.exit(97)
stop.set()
t.join()

print("scratch at", scratch.tell(), "size", os.fstat(scratch.fileno()).st_size)
scratch.seek(0)
print("scratch reads", len(scratch.read()))
print("worker ran", "yes" if counts["worker"] > 0 else "no")
h2 = hashlib.sha256()
for k in sorted(data, key=lambda k: data[k] % 97):
    h2.update(k.encode())
print("phase2", h2.hexdigest(), sum(data.values()))
print("done")
