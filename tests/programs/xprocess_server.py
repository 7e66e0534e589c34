"""xprocess_server: a small TCP server for the xprocess compat tests,
standard library only.

Usage: ``xprocess_server.py [--noise N] [--die CODE] [--child]``. It binds
a free port on 127.0.0.1, writes it to ``xprocess_server.port`` in its
working directory, prints ``xprocess_server ready on port PORT`` and
answers one line per request:

    PING      -> PONG <its pid> <$XSERVER_GREETING>
    EXIT N    -> exits at once with code N (after printing why)

``--noise N`` prints N lines before the banner; ``--die CODE`` prints an
error and exits with CODE instead of listening; ``--child`` first starts a
child process that lives until it is killed, and
writes its pid to ``xprocess_server.child``. Every line is flushed at once:
stdout is a log file.
"""

import argparse
import os
import socket
import socketserver
import subprocess
import sys


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            line = raw.decode().strip()
            if line == "PING":
                greeting = os.environ.get("XSERVER_GREETING", "-")
                self.wfile.write(("PONG %d %s\n" % (os.getpid(), greeting)).encode())
            elif line.startswith("EXIT "):
                print("xprocess_server: asked to exit with code %s" % line[5:], flush=True)
                os._exit(int(line[5:]))
            else:
                self.wfile.write(b"ERROR\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--noise", type=int, default=0)
    parser.add_argument("--die", type=int)
    parser.add_argument("--child", action="store_true")
    options = parser.parse_args()
    print("xprocess_server starting, pid %d" % os.getpid(), flush=True)
    for i in range(options.noise):
        print("noise line %d" % i, flush=True)
    if options.die is not None:
        print("xprocess_server: fatal: cannot start (asked to die)", flush=True)
        return options.die
    if options.child:
        child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
        write_atomically("xprocess_server.child", str(child.pid))
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = server.server_address[1]
    write_atomically("xprocess_server.port", str(port))
    print("xprocess_server ready on port %d" % port, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
