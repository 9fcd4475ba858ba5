# Signal handlers survive the program's subprocesses and a restart.
# CPython's subprocess forks with vfork, and the child resets every
# handled signal to SIG_DFL before exec: that is the child's change, on
# its parent's memory. Each step starts a subprocess, then signals itself
# SIGUSR1 and SIGINT; at the end SIGTERM asks for a graceful shutdown.
import os
import signal
import subprocess
import sys
import time

usr1 = 0


def on_usr1(s, f):
    global usr1
    usr1 += 1


def on_term(s, f):
    print("graceful shutdown after", usr1, "SIGUSR1", flush=True)
    sys.exit(0)


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, on_term)
interrupted = 0
for step in range(30):
    subprocess.run(["true"])
    os.kill(os.getpid(), signal.SIGUSR1)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    except KeyboardInterrupt:
        interrupted += 1
    print("step", step, "usr1", usr1, "interrupted", interrupted,
          "handler kept", signal.getsignal(signal.SIGUSR1) is on_usr1, flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(2)
print("still running: SIGTERM swallowed", flush=True)
