"""A misbehaving "daemon" for the tests: one mode per way a daemon misbehaves.

Usage: ``misbehave.py MODE [ARGS...]``. Standard library only. Every mode
first prints ``started pid N``; every line is flushed at once, since stdout
is a log file. "Stays alive" means: until killed.

Modes:

ready-after DELAY     sleep DELAY seconds, print "ready", stay alive
never-ready           print something else, stay alive
exit CODE             print "exiting with code CODE", exit with CODE
flood MB              write MB megabytes to stdout, print "ready", stay alive
ignore-term           ignore SIGTERM, print "ready", stay alive
double-fork PIDFILE   fork a child that setsid()s and forks a grandchild that
                      writes its pid to PIDFILE (atomically) and stays alive;
                      once PIDFILE exists, print "ready", stay alive
tree N PIDFILE        fork N children that each fork a grandchild; once all
                      2N are up, write their pids to PIDFILE (atomically),
                      print "ready", stay alive
split-banner          write "rea", wait a bit, write "dy", stay alive
listen PORT [DELAY]   after DELAY seconds, listen on 127.0.0.1:PORT, print
                      "ready", accept and close connections forever
"""

import os
import signal
import socket
import sys
import time


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def stay():
    while True:
        time.sleep(3600)


def write_atomically(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def ready_after(delay):
    time.sleep(float(delay))
    say("ready")
    stay()


def never_ready():
    say("not ready yet, and never will be")
    stay()


def exit_with(code):
    say("exiting with code %d" % int(code))
    sys.exit(int(code))


def flood(megabytes):
    chunk = (b"x" * 1023 + b"\n") * 1024
    for _ in range(int(megabytes)):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    say("ready")
    stay()


def ignore_term():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    say("ready")
    stay()


def double_fork(pidfile):
    child = os.fork()
    if child == 0:
        os.setsid()  # leave the process group and the session
        if os.fork() == 0:
            write_atomically(pidfile, "%d\n" % os.getpid())
            stay()
        os._exit(0)
    os.waitpid(child, 0)
    while not os.path.exists(pidfile):
        time.sleep(0.005)
    say("ready")
    stay()


def tree(count, pidfile):
    read_end, write_end = os.pipe()
    for _ in range(int(count)):
        if os.fork() == 0:
            os.close(read_end)
            if os.fork() == 0:
                os.write(write_end, b"%d\n" % os.getpid())
                os.close(write_end)
                stay()
            os.write(write_end, b"%d\n" % os.getpid())
            os.close(write_end)
            stay()
    os.close(write_end)
    data = b""
    while data.count(b"\n") < 2 * int(count):
        more = os.read(read_end, 4096)
        if not more:
            say("a child died before reporting its pid")
            sys.exit(1)
        data += more
    write_atomically(pidfile, " ".join(data.decode().split()) + "\n")
    say("ready")
    stay()


def split_banner():
    sys.stdout.write("rea")
    sys.stdout.flush()
    time.sleep(0.3)
    say("dy")
    stay()


def listen(port, delay="0"):
    time.sleep(float(delay))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(port)))
    sock.listen(64)
    say("ready")
    while True:
        conn, _ = sock.accept()
        conn.close()


MODES = {
    "ready-after": ready_after,
    "never-ready": never_ready,
    "exit": exit_with,
    "flood": flood,
    "ignore-term": ignore_term,
    "double-fork": double_fork,
    "tree": tree,
    "split-banner": split_banner,
    "listen": listen,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in MODES:
        sys.stderr.write("usage: misbehave.py {%s} [ARGS...]\n" % ",".join(sorted(MODES)))
        return 2
    say("started pid %d" % os.getpid())
    MODES[argv[1]](*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
