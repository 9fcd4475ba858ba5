#!/usr/bin/env python3
"""The server libsession talks to: one line in, one line out, per
connection ("square N" -> "N^2 = M"). Run: server.py SOCKET_PATH"""
import os
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            words = line.decode().split()
            if len(words) == 2 and words[0] == "square":
                n = int(words[1])
                answer = f"{n}^2 = {n * n}"
            else:
                answer = "error: unknown request"
            self.wfile.write((answer + "\n").encode())


path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
with socketserver.ThreadingUnixStreamServer(path, Handler) as server:
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()
