# A python program that appends to its log with open(..., "a") for every
# record (each closed at once) and rewrites a JSON state file in place
# ("w"); a child process (a shell, ended at once) appends to another
# log. Prints "step N".
import json
import subprocess
import time

for i in range(1, 61):
    with open("py.log", "a") as f:
        f.write(f"record {i}\n")
    with open("state.json", "w") as f:
        json.dump({"step": i}, f)
    subprocess.run(["/bin/sh", "-c", f"echo child {i} >> child.log"], check=True)
    print(f"step {i}", flush=True)
    time.sleep(0.02)
