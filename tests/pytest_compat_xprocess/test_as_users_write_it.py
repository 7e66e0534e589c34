"""Tests as pytest-xprocess users write them, against the conftest's
fixtures (one server per xdist worker)."""

import os

from conftest import WORKER, ping


def test_the_starter_server_answers(server):
    pid, port, logfile = server
    assert ping(port) == ["PONG", str(pid), "starter"]
    assert "ready on port %d" % port in logfile.read()


def test_the_legacy_server_answers(legacy_server):
    pid, port, logfile = legacy_server
    assert ping(port) == ["PONG", str(pid), "legacy"]
    assert os.path.basename(str(logfile)) == "xprocess.log"


def test_ensure_again_gives_the_running_process(server, xprocess):
    pid, port, logfile = server

    class Unused:  # not called: the process runs already
        pass

    assert xprocess.ensure("server-" + WORKER, Unused) == (pid, logfile)
    info = xprocess.getinfo("server-" + WORKER)
    assert (info.pid, info.isrunning(), str(info.logpath)) == (pid, True, str(logfile))


def test_restart_gives_a_new_process(server, xprocess):
    pid, port, logfile = server
    info = xprocess.getinfo("server-" + WORKER)
    # The same starter again, found through the record of the running one.
    from conftest import SERVER, ProcessStarter

    class Again(ProcessStarter):
        pattern = "ready on port"
        args = ["python3", SERVER]

    new_pid, _ = xprocess.ensure("server-" + WORKER, Again, restart=True)
    assert new_pid != pid
    assert not info.isrunning()  # the old one, by its pid and start time
    assert xprocess.getinfo("server-" + WORKER).isrunning()


def test_terminate_stops_it(legacy_server, xprocess):
    info = xprocess.getinfo("legacy-" + WORKER)
    assert info.terminate() == 1
    assert not info.isrunning()
    assert info.terminate() == 0
    assert "terminated" in info.status()
