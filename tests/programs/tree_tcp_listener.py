# A TCP listener (SO_REUSEADDR), a bound UDP socket and a semaphore
# eventfd, passed at 3, 4, 5 across exec to a child that serves: it
# accepts each connection, reads the eventfd and a datagram, answers and
# closes first (its side of each connection lingers in TIME_WAIT on the
# listening port). The parent, the client, prints each answer.
import os, socket, subprocess, sys, time

if len(sys.argv) > 1 and sys.argv[1] == "child":
    listener, udp, ev = socket.socket(fileno=3), socket.socket(fileno=4), 5
    for i in range(14):
        c, _ = listener.accept()
        d = c.recv(100)
        v = int.from_bytes(os.read(ev, 8), "little")
        msg, _ = udp.recvfrom(100)
        c.sendall(d.upper() + b" ev=%d udp=%s" % (v, msg))
        c.close()
    sys.exit(0)

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(5)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
ev = os.eventfd(0, os.EFD_SEMAPHORE)
for fd, n in ((listener.fileno(), 3), (udp.fileno(), 4), (ev, 5)):
    if fd != n:
        os.dup2(fd, n)
child = subprocess.Popen([sys.executable, sys.argv[0], "child"], pass_fds=(3, 4, 5))
port, to = listener.getsockname()[1], udp.getsockname()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(14):
    os.eventfd_write(5, 2)
    s.sendto(b"u%d" % i, to)
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"hello %d" % i)
    print(c.recv(100).decode(), flush=True)
    c.close()
    time.sleep(0.08)
print("child", child.wait(), "left", int.from_bytes(os.read(5, 8), "little"))
