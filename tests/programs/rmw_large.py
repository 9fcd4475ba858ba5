# A 2 MB file opened for reading and writing ("r+b"): each step adds one
# to a counter at its start and appends a line (too large for the image
# to keep: a restart can only cut it back, and must say what it cannot
# put back). Prints "step N".
import os
import time

if not os.path.exists("f.bin"):
    with open("f.bin", "wb") as f:
        f.write(b"0" * 10 + b"\n" + b"." * 2_000_000)
f = open("f.bin", "r+b")
for i in range(1, 61):
    f.seek(0)
    n = int(f.read(10)) + 1
    f.seek(0)
    f.write(b"%010d" % n)
    f.seek(0, 2)
    f.write(b"step %d\n" % i)
    f.flush()
    print(f"step {i} counter {n}", flush=True)
    time.sleep(0.02)
