"""A "test runner" that the watchdog tests drive, one command a line on stdin.

Usage: ``python watchdog_runner.py`` (with fixtures_daemons importable).
After every command it prints ``STATE {json}``: the pids of its processes
(daemons and their descendants), their temp dirs, the spares and trash
dirs it made, its watchdog's pid and token and its journal. Commands:

up MODE [ARGS...]   set up a ProcessFixture of tests/programs/misbehave.py
                    in MODE (``double-fork`` and ``tree`` get their pid file)
spare               have the watchdog copy a fake template as a spare in
                    the default temp root; wait until it is there
discard FILES       a private dir with FILES files, cleaned up: the dir is
                    renamed to trash, and the watchdog told to delete it
build               build a template of the cache in $CACHE (its copy goes
                    to a dir in $WORK, as does the spare's template); the build
                    prints ``BUILDING`` and blocks until stdin closes
stage               the same, but block once the staging dir is filled
                    (``STAGING``)
state               only print the state
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from fixtures_daemons import ProcessFixture
from fixtures_daemons.base import templates
from fixtures_daemons.process import _reaper, probes
from fixtures_daemons.process.tempdirs import PrivateDirFixture, default_temp_root
from fixtures_daemons.process.waiting import wait_for
from fixtures_daemons.process.watchdog import Watchdog

MISBEHAVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "misbehave.py")
PID_FILES = {"double-fork": "grandchild.pid", "tree": "tree.pids"}

fixtures: list[ProcessFixture] = []
pids: list[int] = []
spares: list[str] = []
trash: list[str] = []


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def state() -> None:
    watchdog = Watchdog.get()
    registry = watchdog.registry
    say(
        "STATE "
        + json.dumps(
            {
                "pids": pids,
                "dirs": [fixture.temp_dir for fixture in fixtures],
                "spares": spares,
                "trash": trash,
                "watchdog": watchdog.process.pid,
                "token": watchdog.token,
                "restarts": watchdog.restarts,
                "journal": os.path.join(registry, watchdog.token + ".journal") if registry else "",
            }
        )
    )


def up(mode: str, *args: str) -> None:
    argv = [sys.executable, MISBEHAVE, mode]
    pid_file = PID_FILES.get(mode)
    if mode == "tree":
        argv += [args[0] if args else "2", pid_file or ""]
    elif pid_file:
        argv.append(pid_file)
    else:
        argv += list(args)
    fixture = ProcessFixture(argv, probe=probes.LogPattern("^ready$"), name=mode)
    fixture.setUp()
    fixtures.append(fixture)
    assert fixture.pid is not None and fixture.temp_dir is not None
    pids.append(fixture.pid)
    if pid_file:
        with open(os.path.join(fixture.temp_dir, pid_file)) as f:
            pids.extend(int(word) for word in f.read().split())


def spare() -> None:
    watchdog = Watchdog.get()
    source = tempfile.mkdtemp(prefix="template-", dir=os.environ["WORK"])
    data = os.path.join(source, "data")
    os.mkdir(data)
    for n in range(20):
        with open(os.path.join(data, "file%d" % n), "w") as f:
            f.write("x" * 1000)
    lock = os.path.join(source, "lock")
    open(lock, "w").close()
    uid = os.geteuid()
    path = os.path.join(
        default_temp_root(),
        ".fxd-spare-fake-00000000-%d-%s-%s" % (uid, watchdog.token[:8], os.urandom(4).hex()),
    )
    watchdog.prepare_copy(data, lock, path, -1, -1)
    if not wait_for(lambda: os.path.isdir(path), 30):
        raise SystemExit("the spare %s was not made" % path)
    spares.append(path)
    templates.remove_tree(source)


def discard(files: str) -> None:
    fixture = PrivateDirFixture("discarded")
    fixture.setUp()
    for n in range(int(files)):
        open(os.path.join(fixture.path, "f%d" % n), "w").close()
    trash.append(_reaper.trash_sibling(fixture.path))
    fixture.cleanUp()


def block(what: str) -> None:
    say(what)
    sys.stdin.read()


def build(at: str) -> None:
    cache = templates.TemplateCache(os.environ["CACHE"])
    if at == "stage":
        manifest = templates._manifest

        def blocking_manifest(root: str) -> dict[str, list[object]]:
            result = manifest(root)
            block("STAGING")
            return result

        templates._manifest = blocking_manifest

    def fill(directory: str) -> None:
        with open(os.path.join(directory, "data.txt"), "w") as f:
            f.write("built")
        if at == "build":
            block("BUILDING")

    dst = os.path.join(tempfile.mkdtemp(prefix="dst-", dir=os.environ["WORK"]), "copy")
    cache.instantiate("fake", {}, "1", fill, dst)


def main() -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        if command == "up":
            up(*args)
        elif command == "spare":
            spare()
        elif command == "discard":
            discard(*args)
        elif command in ("build", "stage"):
            build(command)
        state()


if __name__ == "__main__":
    main()
