# A python program that appends to its log with open(..., "a") for every
# record (each closed at once) and rewrites a JSON state file in place
# ("w"), and saves another "atomically" (a new version renamed over the
# old); a child process (a shell, ended at once) appends to another
# log. Prints "step N".
import json
import os
import subprocess
import time

for i in range(1, 61):
    # What the last step saved (a restart must have put it back).
    saw = open("snap.json").read() if os.path.exists("snap.json") else "-"
    with open("py.log", "a") as f:
        f.write(f"record {i} saw {saw}\n")
    with open("state.json", "w") as f:
        json.dump({"step": i}, f)
    with open("snap.tmp", "w") as f:
        json.dump({"snap": i}, f)
    os.replace("snap.tmp", "snap.json")
    subprocess.run(["/bin/sh", "-c", f"echo child {i} >> child.log"], check=True)
    print(f"step {i}", flush=True)
    time.sleep(0.02)
