"""rotate_logs.py: python's RotatingFileHandler (2000 bytes, 3 backups)
writes a record per step and rotates about every 28 steps: app.log is
renamed to app.log.1 (the older backups moved along, the oldest removed)
and a new app.log begins. Prints each step; the logs are compared with an
uninterrupted run's."""
import logging
import logging.handlers
import time

h = logging.handlers.RotatingFileHandler("app.log", maxBytes=2000, backupCount=3)
log = logging.getLogger("rotate")
log.addHandler(h)
log.setLevel(logging.INFO)
for i in range(1, 301):
    log.info("record %04d %s", i, "x" * 40)
    print(f"step {i}", flush=True)
    time.sleep(0.01)
print("done", flush=True)
