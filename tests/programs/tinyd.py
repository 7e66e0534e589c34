"""tinyd: a tiny key-value daemon for the tests, standard library only.

Usage: ``tinyd.py --port N --peer-port M``. It listens on 127.0.0.1 only
and speaks a line protocol, one request and one reply line at a time:

main port (N)          PING -> PONG
                       SET key value -> OK (the value is the rest of the line)
                       GET key -> VALUE value, or NONE
                       DEL key -> OK
                       KEYS prefix -> the keys starting with prefix,
                                      space-separated (an empty line: none)
                       FLUSH -> OK
                       anything else -> ERROR ...
peer port (M)          any line -> PEER <$TINYD_GREETING>

It prints "tinyd ready" once both ports listen, and exits at once on
SIGTERM. Its data lives in memory: a restart brings it back empty.
"""

import argparse
import os
import signal
import socketserver
import sys
import threading

DATA = {}
LOCK = threading.Lock()


def answer(line):
    """The reply to one request on the main port."""
    command, _, rest = line.partition(" ")
    key, _, value = rest.partition(" ")
    with LOCK:
        if command == "PING":
            return "PONG"
        if command == "SET" and key:
            DATA[key] = value
            return "OK"
        if command == "GET" and key:
            return "VALUE " + DATA[key] if key in DATA else "NONE"
        if command == "DEL" and key:
            DATA.pop(key, None)
            return "OK"
        if command == "KEYS":
            return " ".join(sorted(k for k in DATA if k.startswith(rest)))
        if command == "FLUSH":
            DATA.clear()
            return "OK"
    return "ERROR unknown request %r" % line


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # restarted on its port at once
    daemon_threads = True


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.wfile.write((self.server.reply(line) + "\n").encode())


def main(argv):
    parser = argparse.ArgumentParser(prog="tinyd")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peer-port", type=int, required=True)
    options = parser.parse_args(argv)
    # Explicitly: a parent that ignores SIGTERM must not make us ignore it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    greeting = os.environ.get("TINYD_GREETING", "")
    main_server = Server(("127.0.0.1", options.port), Handler)
    main_server.reply = answer
    peer_server = Server(("127.0.0.1", options.peer_port), Handler)
    peer_server.reply = lambda line: "PEER " + greeting
    threading.Thread(target=peer_server.serve_forever, daemon=True).start()
    print("tinyd ready", flush=True)
    main_server.serve_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
