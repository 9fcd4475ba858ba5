"""An asyncio program: an event loop (epoll, a socket pair for wake-ups)
with a producer task and a consumer; it checks on every step that its pid
is the one it started with (asyncio itself checks that on every call, to
tell a fork child from its parent) and that it can signal itself by it."""
import asyncio
import os
import signal

START_PID = os.getpid()
got_usr1 = 0


def on_usr1(signum, frame):
    global got_usr1
    got_usr1 += 1


async def producer(q):
    for i in range(40):
        await asyncio.sleep(0.05)
        await q.put(i)
    await q.put(None)


async def main():
    q = asyncio.Queue()
    task = asyncio.create_task(producer(q))
    total = 0
    while (x := await q.get()) is not None:
        total += x * x
        if x % 10 == 9:
            os.kill(os.getpid(), signal.SIGUSR1)
        print("step", x, total, "same pid:", os.getpid() == START_PID, flush=True)
    await task
    print("done", total, "usr1:", got_usr1, flush=True)


signal.signal(signal.SIGUSR1, on_usr1)
asyncio.run(main())
