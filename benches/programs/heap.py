"""A python heap of about N MiB (dicts, lists of floats, strings, tuples,
as a real program's data), then the memory bench's protocol on stdin:
'x' prints "pong 0", 's' prints "stall 0" (not measured here), 'r' and
'q' are taken and ignored; it ends at EOF."""
import random
import sys

target = int(sys.argv[1]) << 20
random.seed(1)


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


table = {}
rows = []
i = 0
while True:
    table[f"key-{i}"] = [random.random() * i for _ in range(8)]
    rows.append((i, f"row {i}: " + "abcdefgh"[i % 8] * (i % 40), i * 0.5))
    i += 1
    if i % 5000 == 0 and rss() >= target:
        break
print("ready", flush=True)
while True:
    c = sys.stdin.read(1)
    if not c:
        break
    if c == "x":
        print("pong 0", flush=True)
    elif c == "s":
        print("stall 0", flush=True)
