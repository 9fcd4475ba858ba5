# A python program that appends to its log with open(..., "a") for every
# record (each closed at once) and rewrites a JSON state file in place
# ("w"). Prints "step N".
import json
import time

for i in range(1, 61):
    with open("py.log", "a") as f:
        f.write(f"record {i}\n")
    with open("state.json", "w") as f:
        json.dump({"step": i}, f)
    print(f"step {i}", flush=True)
    time.sleep(0.02)
