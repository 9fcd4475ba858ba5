"""mmap_shared_file.py: python's mmap of a file (3 MiB and 123 bytes,
its end inside a page) opened read-write, then closed; each step stores
into a pseudo-random place and a counter, prints the step and a digest of
the mapping. The file and stdout are compared with an uninterrupted run's."""
import hashlib
import mmap
import os
import time

SIZE = (3 << 20) + 123
with open("py.bin", "wb") as f:
    f.write(b"p" * 5000)
    f.truncate(SIZE)
fd = os.open("py.bin", os.O_RDWR)
m = mmap.mmap(fd, SIZE)
os.close(fd)
x = 12345
for i in range(1, 81):
    x = (x * 1103515245 + 12345) % (1 << 31)
    at = x % SIZE
    m[at] = (m[at] + i) % 256
    m[SIZE - 1] = i % 256
    print(f"step {i} at {at} digest {hashlib.sha1(m).hexdigest()}", flush=True)
    time.sleep(0.01)
m.flush()
print("done", flush=True)
