"""The ``fixtures-daemons`` command, run as a subprocess against real daemons.

Every test runs the real CLI (``python -m fixtures_daemons``) and real
daemons, with its own temp root (``$FIXTURES_DAEMONS_TMPDIR``) and state dir
(``$FIXTURES_DAEMONS_STATE_DIR``), and a marker variable in the environment
that every process it starts inherits (the CLI, the holders, the daemons,
the commands). After each test nothing carrying the marker may run and the
temp root must be empty: that is how "nothing left running" is checked,
whatever the test did.

pifpaf (the tool the CLI replaces) is run for the comparison of exported
variables when it is installed; its PostgreSQL, MariaDB and memcached
drivers refuse root, so those comparisons run only as an ordinary user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import typing
import uuid

import fixtures
import psutil

from fixtures_daemons.base import persistent
from fixtures_daemons.base.endpoint import Endpoint
from fixtures_daemons.base.spares import close_spare_servers
from fixtures_daemons.base.templates import CACHE_ENV
from fixtures_daemons.daemons.postgresql import PostgresqlFixture
from fixtures_daemons.daemons.redis import RedisFixture
from fixtures_daemons.integrations import registry
from fixtures_daemons.process import _reaper
from fixtures_daemons.process.ports import PortFixture
from fixtures_daemons.process.tempdirs import PREFIX, TMPDIR_ENV, default_temp_root
from fixtures_daemons.process.waiting import wait_for
from tests import base

CLI = [sys.executable, "-m", "fixtures_daemons"]
IS_ROOT = os.geteuid() == 0
MARKER_ENV = "FXD_TEST_CLI_MARKER"
#: The program each daemon runs, as psutil names it.
PROGRAMS = {"postgresql": "postgres", "redis": "redis-server", "memcached": "memcached"}
#: Variables of ours that configure the library rather than describe a
#: daemon: kept in the tests' environment; any other FIXTURES_DAEMONS_*,
#: PIFPAF_* or PG* variable (say, the suite runs under `fixtures-daemons
#: run`) is removed so the CLI sees a clean environment.
CONFIG_SUFFIXES = (
    "TMPDIR",
    "USER",
    "CACHE_DIR",
    "STATE_DIR",
    "TAG",
)
#: The variables that name each daemon's program (FIXTURES_DAEMONS_POSTGRES).
PROGRAM_VARIABLES = frozenset(
    cls.executable.env_var for cls in registry.builtin_daemons().values() if cls.executable.env_var
)
#: Writes the environment as JSON to argv[1] (atomically: a handshake file).
DUMP_ENV = (
    "import json, os, sys; "
    "json.dump(dict(os.environ), open(sys.argv[1] + '.tmp', 'w')); "
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])"
)
#: Fails unless the Redis server of $FIXTURES_DAEMONS_REDIS_URL answers.
REDIS_PING = (
    "import os, redis; assert redis.Redis.from_url(os.environ['FIXTURES_DAEMONS_REDIS_URL']).ping()"
)


def _exported_by_a_daemon(name: str) -> bool:
    if name.startswith("FIXTURES_DAEMONS_"):
        return not name.endswith(CONFIG_SUFFIXES) and name not in PROGRAM_VARIABLES
    return name.startswith(("PIFPAF_", "PG")) or name.endswith("_URLS")


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:
        return False


def _cwd(pid: int) -> str:
    """The working directory of a live process, with a trailing slash."""
    try:
        if _reaper.start_time(pid):  # not a zombie
            return os.readlink("/proc/%d/cwd" % pid) + os.sep
    except OSError:
        pass
    return ""


def parse_exports(text: str) -> dict[str, str]:
    """The variables of ``export NAME=VALUE;`` lines (as eval would set them)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            words = shlex.split(line[len("export ") :].rstrip(";"))
            name, _, value = words[0].partition("=")
            found[name] = value
    return found


class CliTestCase(base.TestCase):
    """Runs the CLI in a clean environment of its own; checks afterwards
    that nothing of the test runs any more and no temp dir is left."""

    def setUp(self) -> None:
        super().setUp()
        # No spare server of earlier tests still starting in this process
        # once the variables below are set: it would carry the marker.
        close_spare_servers()
        self.temp_root = self.useFixture(fixtures.TempDir(rootdir=default_temp_root())).path
        os.chmod(self.temp_root, 0o755)  # daemons that refuse root run as nobody
        self.state_dir = self.useFixture(fixtures.TempDir()).path
        self.work = self.useFixture(fixtures.TempDir()).path
        for name in list(os.environ):
            if _exported_by_a_daemon(name):
                self.useFixture(fixtures.EnvironmentVariable(name))
        self.marker = uuid.uuid4().hex
        path = os.environ.get("PYTHONPATH")
        for name, value in (
            (TMPDIR_ENV, self.temp_root),
            (persistent.STATE_ENV, self.state_dir),
            (MARKER_ENV, self.marker),
            # What a holder started by reuse= in this process needs too.
            ("PYTHONPATH", base.REPO_ROOT + (os.pathsep + path if path else "")),
        ):
            self.useFixture(fixtures.EnvironmentVariable(name, value))
        # Registered after the fixtures above and before anything a test
        # registers: runs after the test's own cleanups, before the temp
        # root goes.
        self.addCleanup(self.checkNothingLeft)

    # -- running the CLI ---------------------------------------------------

    def cli(
        self, *args: object, timeout: float = 180, **kwargs: typing.Any
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI to its end; its output as text."""
        kwargs.setdefault("env", dict(os.environ))
        return subprocess.run(
            CLI + [str(arg) for arg in args],
            cwd=base.REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def assertStatus(self, expected: int, result: subprocess.CompletedProcess[str]) -> None:
        self.assertEqual(
            expected,
            result.returncode,
            "%s exited %d\nstdout:\n%s\nstderr:\n%s"
            % (shlex.join(result.args), result.returncode, result.stdout, result.stderr),
        )

    def runDump(self, *args: object, status: int = 0) -> dict[str, str]:
        """``fixtures-daemons ARGS -- python DUMP_ENV``: the command's environment."""
        path = os.path.join(self.work, "env-%s.json" % uuid.uuid4().hex)
        result = self.cli(*args, "--", sys.executable, "-c", DUMP_ENV, path)
        self.assertStatus(status, result)
        with open(path) as f:
            env: dict[str, str] = json.load(f)
        return env

    def popenCli(self, *args: object) -> subprocess.Popen[bytes]:
        """Start the CLI; stdout on a pipe; killed (then reaped) on cleanup."""
        child = subprocess.Popen(
            CLI + [str(arg) for arg in args],
            cwd=base.REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def reap() -> None:
            if child.poll() is None:
                child.kill()
            child.wait()
            assert child.stdout is not None and child.stderr is not None
            child.stdout.close()
            child.stderr.close()

        self.addCleanup(reap)
        return child

    def bash(self, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run a bash script in which ``$FXD`` runs the CLI."""
        env = dict(os.environ, FXD=shlex.join(CLI))
        return subprocess.run(
            ["bash", "-c", script],
            cwd=base.REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )

    @staticmethod
    def variables(**values: str) -> str:
        """Shell assignments of ``values``, one a line."""
        return "".join("%s=%s\n" % (name, shlex.quote(value)) for name, value in values.items())

    def readJson(self, path: str) -> dict[str, typing.Any]:
        with open(path) as f:
            data: dict[str, typing.Any] = json.load(f)
        return data

    # -- what a test leaves --------------------------------------------------

    def marked(self) -> list[int]:
        """Live processes (zombies excluded) started by this test: those
        with its marker in their environment, and those working in its
        temp root or work dir (redis-server overwrites its environment
        with its process title)."""
        needle = ("%s=%s" % (MARKER_ENV, self.marker)).encode()
        dirs = (self.temp_root + os.sep, self.work + os.sep)
        me = os.getpid()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            if _environ_has(int(entry), needle) or _cwd(int(entry)).startswith(dirs):
                found.append(int(entry))
        return found

    def checkNothingLeft(self) -> None:
        close_spare_servers()  # the spares of this test's own fixtures
        left: list[int] = []

        def clean() -> bool:
            left[:] = self.marked()
            return not left

        # Watchdogs finish their cleanup a moment after their process exits.
        if not wait_for(clean, 10.0):
            described = []
            for pid in left:
                try:
                    described.append("%d %s" % (pid, " ".join(psutil.Process(pid).cmdline())))
                    os.kill(pid, signal.SIGKILL)
                except (psutil.Error, OSError):
                    pass
            self.fail("left running: %s" % "; ".join(described))
        dirs = [name for name in os.listdir(self.temp_root) if name.startswith(PREFIX)]
        self.assertEqual([], dirs, "temp dirs left in %s" % self.temp_root)

    def stopHolderOnCleanUp(self, pid: int) -> None:
        """Stop the eval-mode holder ``pid`` at the end of the test, if the
        test did not (a failed check half-way)."""
        start = _reaper.start_time(pid)
        if start:  # "" once it is gone
            self.addCleanup(persistent.stop_holder, pid, start)


class TestRunCommand(CliTestCase):
    """``fixtures-daemons run DAEMON -- COMMAND``."""

    def test_zero_status_and_native_variables(self) -> None:
        env = self.runDump("run", "redis")
        port = env["FIXTURES_DAEMONS_REDIS_PORT"]
        password = env["FIXTURES_DAEMONS_REDIS_PASSWORD"]
        url = "redis://:%s@127.0.0.1:%s/0" % (password, port)
        self.assertEqual(url, env["FIXTURES_DAEMONS_URL"])
        self.assertEqual(url, env["FIXTURES_DAEMONS_REDIS_URL"])
        self.assertEqual(url, env["FIXTURES_DAEMONS_URLS"])
        self.assertEqual("127.0.0.1", env["FIXTURES_DAEMONS_REDIS_HOST"])
        self.assertEqual("redis", env["FIXTURES_DAEMONS_DAEMON"])
        data = env["FIXTURES_DAEMONS_DATA"]  # pifpaf's name: always there
        self.assertEqual(self.temp_root, os.path.dirname(data))
        self.assertEqual(os.path.join(data, "redis.sock"), env["FIXTURES_DAEMONS_REDIS_SOCKET"])
        self.assertDirGone(data)

    def test_the_command_talks_to_the_daemon(self) -> None:
        self.assertStatus(0, self.cli("run", "redis", "--", sys.executable, "-c", REDIS_PING))

    def test_exit_status_is_the_commands(self) -> None:
        self.assertStatus(7, self.cli("run", "memcached", "--", "sh", "-c", "exit 7"))

    def test_command_killed_by_a_signal(self) -> None:
        result = self.cli("run", "redis", "--", "sh", "-c", "kill -KILL $$")
        self.assertStatus(128 + signal.SIGKILL, result)

    def test_daemon_that_dies_during_the_command_is_reported(self) -> None:
        # The command kills the daemon (as a crash or the OOM killer would)
        # and waits until it is gone (a zombie until the tool reaps it); then
        # exits with the given status.
        kill = (
            "import json, os, psutil, signal, sys\n"
            "state = json.loads(os.environ['FIXTURES_DAEMONS_MEMCACHED_STATE'])\n"
            "daemon = psutil.Process(state['endpoint']['pid'])\n"
            "daemon.send_signal(signal.SIGKILL)\n"
            "from fixtures_daemons.process.waiting import wait_for\n"
            "gone = lambda: not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE\n"
            "assert wait_for(gone, 30)\n"
            "sys.exit(int(sys.argv[1]))\n"
        )
        for command_status, expected in ((0, 3), (5, 5)):
            result = self.cli(
                "run", "memcached", "--", sys.executable, "-c", kill, str(command_status)
            )
            self.assertStatus(expected, result)
            self.assertIn("was killed by signal %d while in use" % signal.SIGKILL, result.stderr)

    def test_log_file_keeps_the_daemons_log_and_the_messages(self) -> None:
        path = os.path.join(self.work, "run.log")
        self.assertStatus(0, self.cli("--log-file", path, "run", "redis", "--", "true"))
        with open(path) as f:
            text = f.read()
        self.assertIn("== redis log redis.log", text)
        self.assertIn("Ready to accept connections", text)  # the daemon's own log
        # A complaint goes there too (and to stderr).
        result = self.cli("--log-file", path, "run", "redis", "--", "/nonexistent/cmd")
        self.assertStatus(127, result)
        with open(path) as f:
            self.assertIn("command not found: /nonexistent/cmd", f.read())

    def test_keep(self) -> None:
        # The command's own fixtures do not inherit --keep.
        result = self.cli(
            "--keep", "run", "redis", "--", "sh", "-c", 'test -z "$FIXTURES_DAEMONS_KEEP"'
        )
        self.assertStatus(0, result)
        match = re.search(r"kept (\S+)", result.stderr)
        assert match is not None, result.stderr
        kept = match.group(1)
        self.addCleanup(shutil.rmtree, kept, True)
        self.assertEqual(self.temp_root, os.path.dirname(kept))
        self.assertIn("redis.log", os.listdir(kept))
        # The daemon stopped all the same (the tool's watchdog may take a
        # moment to exit after it).
        self.assertTrue(wait_for(lambda: not self.marked(), 10), self.marked())

    def test_pifpaf_style(self) -> None:
        env = self.runDump("run", "--style", "pifpaf", "redis")
        port = env["FIXTURES_DAEMONS_REDIS_PORT"]
        url = "redis://:%s@localhost:%s" % (env["FIXTURES_DAEMONS_REDIS_PASSWORD"], port)
        self.assertEqual(url, env["FIXTURES_DAEMONS_URL"])
        self.assertEqual(url, env["FIXTURES_DAEMONS_REDIS_URL"])
        self.assertEqual(url, env["FIXTURES_DAEMONS_URLS"])

    def test_a_prefix_selects_pifpaf_style(self) -> None:
        env = self.runDump("-e", "CACHE", "run", "memcached")
        url = "memcached://localhost:%s" % env["CACHE_MEMCACHED_PORT"]
        self.assertEqual(url, env["CACHE_URL"])
        self.assertEqual(url, env["CACHE_MEMCACHED_URL"])
        self.assertEqual("memcached", env["CACHE_DAEMON"])
        self.assertEqual(url, env["PIFPAF_URLS"])  # pifpaf's default, as with pifpaf
        self.assertNotIn("FIXTURES_DAEMONS_URL", env)
        self.assertNotIn("FIXTURES_DAEMONS_URLS", env)
        # -e after run works as well.
        env = self.runDump("run", "-e", "CACHE", "--style", "native", "memcached")
        self.assertEqual("memcached://127.0.0.1:%s" % env["CACHE_MEMCACHED_PORT"], env["CACHE_URL"])

    def test_pifpaf_prefix_accumulates_in_pifpaf_urls(self) -> None:
        env = self.runDump("-e", "PIFPAF", "run", "redis")
        self.assertEqual(env["PIFPAF_URL"], env["PIFPAF_URLS"])
        self.assertNotIn("FIXTURES_DAEMONS_URLS", env)

    def test_postgresql_variables(self) -> None:
        env = self.runDump("run", "postgresql", "--database", "app")
        port = env["FIXTURES_DAEMONS_POSTGRESQL_PORT"]
        data = env["FIXTURES_DAEMONS_DATA"]
        password = env["FIXTURES_DAEMONS_POSTGRESQL_PASSWORD"]
        self.assertEqual(
            "postgresql://postgres:%s@127.0.0.1:%s/app" % (password, port),
            env["FIXTURES_DAEMONS_URL"],
        )
        self.assertEqual("app", env["FIXTURES_DAEMONS_POSTGRESQL_DATABASE"])
        # libpq's variables, as pifpaf sets them: psql works as it is.
        self.assertEqual(data, env["PGHOST"])
        self.assertEqual(port, env["PGPORT"])
        self.assertEqual("app", env["PGDATABASE"])
        self.assertEqual("postgres", env["PGUSER"])

    def test_psql_needs_no_options(self) -> None:
        psql = shutil.which("psql")
        if psql is None:
            self.skipTest("psql is not installed")
        result = self.cli("run", "postgresql", "--", psql, "-Atc", "SELECT current_user, 6 * 7")
        self.assertStatus(0, result)
        self.assertEqual("postgres|42\n", result.stdout)

    def test_mysql_client_needs_no_options(self) -> None:
        client = shutil.which("mariadb") or shutil.which("mysql")
        if client is None:
            self.skipTest("the mysql client is not installed")
        result = self.cli("run", "mysql", "--", client, "-NBe", "SELECT DATABASE() IS NULL, 6 * 7")
        self.assertStatus(0, result)
        self.assertEqual("1\t42\n", result.stdout)

    def test_nested_daemons(self) -> None:
        path = os.path.join(self.work, "env.json")
        result = self.cli(
            *("-e", "STORAGE", "run", "memcached", "--"),
            *(*CLI, "-e", "INDEX", "run", "postgresql", "--"),
            *("sh", "-c", 'exec "$0" -c "$1" "$2"', sys.executable, DUMP_ENV, path),
        )
        self.assertStatus(0, result)
        env = self.readJson(path)
        storage, index = env["STORAGE_URL"], env["INDEX_URL"]
        self.assertEqual("memcached://localhost:%s" % env["STORAGE_MEMCACHED_PORT"], storage)
        self.assertEqual(storage, env["STORAGE_MEMCACHED_URL"])
        self.assertEqual(index, env["INDEX_POSTGRESQL_URL"])
        self.assertTrue(index.startswith("postgresql://localhost/postgres?host="), index)
        self.assertEqual(env["INDEX_DATA"], env["PGHOST"])
        self.assertEqual("%s;%s" % (storage, index), env["PIFPAF_URLS"])

    def test_global_urls_variable_renamed(self) -> None:
        # -g alone: the variables are pifpaf's PIFPAF_*, as with pifpaf.
        env = self.runDump(
            "-g", "ALL_URLS", "run", "redis", "--", *CLI, "-g", "ALL_URLS", "run", "memcached"
        )
        self.assertEqual(
            "redis://:%s@localhost:%s;memcached://localhost:%s"
            % (
                env["PIFPAF_REDIS_PASSWORD"],
                env["PIFPAF_REDIS_PORT"],
                env["PIFPAF_MEMCACHED_PORT"],
            ),
            env["ALL_URLS"],
        )
        self.assertEqual(env["PIFPAF_MEMCACHED_URL"], env["PIFPAF_URL"])
        self.assertNotIn("FIXTURES_DAEMONS_URLS", env)
        self.assertNotIn("PIFPAF_URLS", env)

    def test_nested_runs_of_one_daemon_start_two(self) -> None:
        # The inner run sees the outer's variables (its *_STATE too) and
        # still starts a daemon of its own.
        outer_path = os.path.join(self.work, "outer.json")
        inner_path = os.path.join(self.work, "inner.json")
        script = '"$0" -c "$1" "$2" && exec "$3" -m fixtures_daemons run redis -- "$0" -c "$1" "$4"'
        result = self.cli(
            "run",
            "redis",
            "--",
            "sh",
            "-c",
            script,
            sys.executable,
            DUMP_ENV,
            outer_path,
            sys.executable,
            inner_path,
        )
        self.assertStatus(0, result)
        outer, inner = self.readJson(outer_path), self.readJson(inner_path)
        self.assertNotEqual(
            outer["FIXTURES_DAEMONS_REDIS_PORT"], inner["FIXTURES_DAEMONS_REDIS_PORT"]
        )
        self.assertNotEqual(outer["FIXTURES_DAEMONS_DATA"], inner["FIXTURES_DAEMONS_DATA"])
        self.assertEqual(
            "%s;%s" % (outer["FIXTURES_DAEMONS_URL"], inner["FIXTURES_DAEMONS_URL"]),
            inner["FIXTURES_DAEMONS_URLS"],
        )


class TestSignals(CliTestCase):
    """A signal to the CLI while its command runs: the command, what the
    command started, the daemon and its temp dir all go; the CLI exits
    128 + the signal."""

    def check_signal(self, signum: int, daemon: str) -> None:
        path = os.path.join(self.work, "env.json")
        # A shell script, the usual command, whose child (a process of its
        # own) says it is ready and blocks: a shell waits for its child
        # before it acts on SIGINT, and one killed by SIGTERM or SIGHUP
        # leaves the child behind.
        block = DUMP_ENV + (
            "; import signal, time; signal.signal(signal.SIGINT, signal.SIG_DFL)"
            "; print('ready', flush=True); time.sleep(300)"
        )
        script = '"$0" -c "$1" "$2"; echo "not killed"'
        cli = self.popenCli("run", daemon, "--", "sh", "-c", script, sys.executable, block, path)
        assert cli.stdout is not None and cli.stderr is not None
        self.readLine(base.LineReader(cli.stdout), timeout=120, prefix="ready")
        env = self.readJson(path)
        tree = psutil.Process(cli.pid).children(recursive=True)
        names = [p.name() for p in tree]
        self.assertIn(PROGRAMS[daemon], names)
        self.assertIn("sh", names)
        self.assertEqual(str(cli.pid), env["FIXTURES_DAEMONS_PID"])
        data = env["FIXTURES_DAEMONS_DATA"]
        self.assertTrue(os.path.isdir(data))

        cli.send_signal(signum)
        self.assertEqual(128 + signum, cli.wait(60))
        self.assertGone(*tree, timeout=10)
        self.assertDirGone(data)
        stderr = cli.stderr.read().decode()
        self.assertNotIn("Traceback", stderr)
        self.assertNotIn("not killed", cli.stdout.read().decode())

    def test_sigint(self) -> None:
        self.check_signal(signal.SIGINT, "redis")

    def test_sigterm(self) -> None:
        self.check_signal(signal.SIGTERM, "postgresql")

    def test_sighup(self) -> None:
        self.check_signal(signal.SIGHUP, "memcached")


class TestEvalMode(CliTestCase):
    """``eval "$(fixtures-daemons run DAEMON)"``: a detached holder keeps
    the daemon; the printed stop function stops it and unsets everything."""

    def test_eval_stop_with_pifpaf_alias(self) -> None:
        before, after = (os.path.join(self.work, name) for name in ("before.json", "after.json"))
        script = """
            set -e
            shopt -s expand_aliases
            eval "$($FXD run redis)"
            "$PY" -c "$DUMP" "$BEFORE"
            "$PY" -c "$PING"
            pifpaf_stop
            "$PY" -c "$DUMP" "$AFTER"
            if type fixtures_daemons_stop >/dev/null 2>&1; then echo "stop function left"; fi
            if alias pifpaf_stop >/dev/null 2>&1; then echo "alias left"; fi
        """
        result = self.bash(
            self.variables(
                PY=sys.executable, DUMP=DUMP_ENV, PING=REDIS_PING, BEFORE=before, AFTER=after
            )
            + script
        )
        env = self.readJson(before)
        holder = int(env["FIXTURES_DAEMONS_PID"])
        self.stopHolderOnCleanUp(holder)
        self.assertStatus(0, result)
        self.assertEqual("", result.stdout)
        self.assertEqual(env["FIXTURES_DAEMONS_PID"], env["PIFPAF_PID"])
        self.assertDirGone(env["FIXTURES_DAEMONS_DATA"])
        self.assertGone(holder)
        exported = [name for name in self.readJson(after) if _exported_by_a_daemon(name)]
        self.assertEqual([], exported)

    def test_prefix_names_the_stop_function(self) -> None:
        result = self.bash(
            'eval "$($FXD -e CACHE run memcached)" && type cache_stop >/dev/null && '
            'echo "$CACHE_PID $CACHE_DATA $CACHE_URL" && cache_stop && echo "[$CACHE_URL]"'
        )
        self.assertStatus(0, result)
        pid, data, url = result.stdout.splitlines()[0].split()
        self.assertTrue(url.startswith("memcached://localhost:"), url)
        self.assertEqual("[]", result.stdout.splitlines()[1])
        self.assertGone(int(pid))
        self.assertDirGone(data)

    def test_two_evals_in_one_shell(self) -> None:
        # The second holder inherits the first one's variables (*_STATE
        # among them) and still keeps a daemon of its own.
        result = self.bash(
            'eval "$($FXD run redis)" && eval "$($FXD -e SECOND run redis)" && '
            'echo "$FIXTURES_DAEMONS_REDIS_PORT $SECOND_REDIS_PORT" && '
            "second_stop && fixtures_daemons_stop"
        )
        self.assertStatus(0, result)
        first, second = result.stdout.split()
        self.assertNotEqual(first, second)

    def test_postgresql_logging_over_a_megabyte(self) -> None:
        # Every statement is logged; nothing reads the daemon's output, so
        # if it went to a pipe, postgres would block once the pipe is full.
        before = os.path.join(self.work, "before.json")
        after = os.path.join(self.work, "after.json")
        chatter = """
import glob, os, psycopg, sys
data = os.environ["FIXTURES_DAEMONS_DATA"]
filler = "x" * 1000
with psycopg.connect(os.environ["FIXTURES_DAEMONS_URL"], autocommit=True) as conn:
    for i in range(1300):
        conn.execute("SELECT %d, '%s'" % (i, filler))
logs = glob.glob(os.path.join(data, "*.log"))
size = max(os.path.getsize(p) for p in logs)
assert size > 1 << 20, (logs, size)
with psycopg.connect(os.environ["FIXTURES_DAEMONS_URL"]) as conn:
    assert conn.execute("SELECT 42").fetchone() == (42,)
print("logged", size)
"""
        script = """
            set -e
            eval "$($FXD run postgresql --settings log_statement=all)"
            "$PY" -c "$DUMP" "$BEFORE"
            "$PY" -c "$CHATTER"
            fixtures_daemons_stop
            "$PY" -c "$DUMP" "$AFTER"
        """
        result = self.bash(
            self.variables(
                PY=sys.executable, DUMP=DUMP_ENV, CHATTER=chatter, BEFORE=before, AFTER=after
            )
            + script
        )
        env = self.readJson(before)
        holder = int(env["FIXTURES_DAEMONS_PID"])
        self.stopHolderOnCleanUp(holder)
        self.assertStatus(0, result)
        self.assertIn("logged", result.stdout)
        self.assertGone(holder)
        self.assertDirGone(env["FIXTURES_DAEMONS_DATA"])
        exported = [name for name in self.readJson(after) if _exported_by_a_daemon(name)]
        self.assertEqual([], exported)


class TestNamedDaemons(CliTestCase):
    """start/status/env/stop, and ``reuse=`` on fixtures."""

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(self.cli, "stop", "--all")

    def start(self, name: str, *args: str) -> persistent.Record:
        result = self.cli("start", "--name", name, *args)
        self.assertStatus(0, result)
        record = persistent.load(name)
        assert record is not None
        self.assertEqual(
            "%s: %s started, pid %d, %s\n" % (name, args[0], record.endpoint.pid, record.url),
            result.stdout,
        )
        return record

    def status(self) -> dict[str, list[str]]:
        result = self.cli("status")
        self.assertStatus(0, result)
        return {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}

    def test_start_status_env_stop(self) -> None:
        record = self.start("cache", "redis")
        daemon = psutil.Process(record.endpoint.pid)
        self.assertEqual("redis-server", daemon.name())
        row = self.status()["cache"]
        self.assertEqual(
            ["cache", "redis", "alive", "pid %d" % record.endpoint.pid, record.url], row[:5]
        )
        result = self.cli("env", "cache")
        self.assertStatus(0, result)
        env = parse_exports(result.stdout)
        self.assertEqual(record.url, env["FIXTURES_DAEMONS_URL"])
        self.assertEqual(str(record.endpoint.port), env["FIXTURES_DAEMONS_REDIS_PORT"])
        self.assertEqual(str(record.holder_pid), env["FIXTURES_DAEMONS_PID"])
        result = self.cli("env", "-e", "PIFPAF", "cache")
        self.assertEqual(
            "redis://:%s@localhost:%d" % (record.endpoint.password, record.endpoint.port),
            parse_exports(result.stdout)["PIFPAF_URL"],
        )

        result = self.cli("stop", "cache")
        self.assertStatus(0, result)
        self.assertEqual("cache: stopped\n", result.stdout)
        self.assertGone(daemon, record.holder_pid)
        self.assertDirGone(record.endpoint.directory)
        self.assertEqual("no named daemons\n", self.cli("status").stdout)
        result = self.cli("stop", "cache")
        self.assertStatus(1, result)
        self.assertIn("no daemon named 'cache'", result.stderr)

    def test_start_refuses_a_live_name(self) -> None:
        record = self.start("cache", "memcached")
        result = self.cli("start", "--name", "cache", "memcached")
        self.assertStatus(1, result)
        self.assertIn("already running", result.stderr)
        self.assertEqual(record.holder_pid, persistent.load("cache").holder_pid)

    def test_killed_daemon_is_dead_and_reuse_starts_a_fresh_one(self) -> None:
        old = self.start("cache", "redis")
        os.kill(old.endpoint.pid, signal.SIGKILL)
        self.assertGone(old.endpoint.pid)
        self.assertEqual("dead", self.status()["cache"][2])
        result = self.cli("env", "cache")
        self.assertStatus(1, result)
        self.assertIn("not running any more", result.stderr)

        fixture = self.useFixture(RedisFixture(reuse="cache"))
        new = persistent.load("cache")
        assert new is not None
        self.assertNotEqual(old.endpoint.pid, new.endpoint.pid)
        self.assertEqual(new.endpoint.port, fixture.port)
        self.assertEqual("PONG", fixture.command("PING"))
        self.assertGone(old.holder_pid)
        self.assertDirGone(old.endpoint.directory)
        self.assertEqual("alive", self.status()["cache"][2])

    def test_reuse_attaches_to_a_live_one(self) -> None:
        record = self.start("cache", "redis")
        fixture = RedisFixture(reuse="cache")
        fixture.setUp()
        try:
            self.assertEqual(record.endpoint.port, fixture.port)
            self.assertEqual(str(record.endpoint.port), os.environ["FIXTURES_DAEMONS_REDIS_PORT"])
            self.assertEqual("PONG", fixture.command("PING"))
            self.assertEqual(record, persistent.load("cache"))
            servers = [p for p in self.marked() if psutil.Process(p).name() == "redis-server"]
            self.assertEqual([record.endpoint.pid], servers)
        finally:
            fixture.cleanUp()
        # Attached, not owned: the daemon outlives the fixture.
        self.assertTrue(persistent.alive(record))

    def test_reuse_with_a_database_gets_a_namespace_beside_it(self) -> None:
        # The named daemon is started with database="app"; each reuse=
        # fixture gets a database of its own beside it, dropped on cleanUp.
        fixture = PostgresqlFixture(reuse="devdb", database="app")
        fixture.setUp()
        try:
            record = persistent.load("devdb")
            assert record is not None
            self.assertEqual("app", record.endpoint.database)
            self.assertNotEqual("app", fixture.database)
            names = {row[0] for row in fixture.query("SELECT datname FROM pg_database")}
            self.assertTrue({"app", fixture.database} <= names, names)
            again = self.useFixture(PostgresqlFixture(reuse="devdb", database="app"))
            self.assertNotIn(again.database, ("app", fixture.database))
        finally:
            fixture.cleanUp()
        names = {row[0] for row in again.query("SELECT datname FROM pg_database")}
        self.assertNotIn(fixture.database, names)
        self.assertIn("app", names)

    def test_a_reused_pid_is_not_the_daemon(self) -> None:
        # A record whose pids now belong to another process (the start time
        # tells): dead, whatever answers on its port, and never signalled.
        other = subprocess.Popen(["sleep", "300"])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        start = _reaper.start_time(other.pid)
        self.assertNotEqual("", start)

        def save() -> None:
            persistent.Record(
                name="ghost",
                daemon="redis",
                cls=persistent.class_path(RedisFixture),
                arguments={},
                holder_pid=other.pid,
                holder_start=str(int(start) + 1),
                endpoint=Endpoint(
                    scheme="redis",
                    ports={"main": port},
                    database="0",
                    pid=other.pid,
                    pid_start=str(int(start) + 1),
                ),
                log_path="",
            ).save()

        save()
        self.assertEqual("dead", self.status()["ghost"][2])
        self.assertStatus(1, self.cli("env", "ghost"))
        result = self.cli("stop", "ghost")
        self.assertStatus(0, result)
        self.assertEqual("ghost: was not running\n", result.stdout)
        self.assertIsNone(other.poll())

        save()
        fixture = self.useFixture(RedisFixture(reuse="ghost"))
        record = persistent.load("ghost")
        assert record is not None
        self.assertNotEqual(other.pid, record.holder_pid)
        self.assertNotEqual(port, fixture.port)
        self.assertEqual("PONG", fixture.command("PING"))
        self.assertIsNone(other.poll())

    def test_stop_all(self) -> None:
        records = [self.start("one", "redis"), self.start("two", "memcached")]
        self.assertEqual(["one", "two"], sorted(self.status()))
        result = self.cli("stop", "--all")
        self.assertStatus(0, result)
        self.assertEqual("one: stopped\ntwo: stopped\n", result.stdout)
        for record in records:
            self.assertGone(record.endpoint.pid, record.holder_pid)
            self.assertDirGone(record.endpoint.directory)
        self.assertEqual("no named daemons\n", self.cli("status").stdout)

    def test_stop_of_a_gone_pid_returns_at_once(self) -> None:
        # What the stop function of eval mode runs, for a holder that is
        # gone: it must not wait for it to go.
        gone = subprocess.Popen(["true"])
        gone.wait()
        result = self.cli("stop", "--pid", gone.pid, timeout=30)
        self.assertStatus(0, result)
        result = self.cli("stop", "--pid", gone.pid, "--start-time", "1", timeout=30)
        self.assertStatus(0, result)

    def test_stop_needs_a_name(self) -> None:
        result = self.cli("stop")
        self.assertStatus(2, result)
        self.assertIn("name a daemon, or use --all", result.stderr)


class TestOtherCommands(CliTestCase):
    def test_list(self) -> None:
        result = self.cli("list")
        self.assertStatus(0, result)
        lines = result.stdout.splitlines()
        self.assertEqual(["DAEMON", "FOUND", "PATH"], lines[0].split()[:3])
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        self.assertEqual(registry.daemon_names(), sorted(rows))
        for name in ("postgresql", "mysql", "redis", "memcached"):
            self.assertIn(rows[name][1], ("yes", "no"))
        self.assertEqual("yes", rows["redis"][1])
        self.assertEqual(shutil.which("redis-server"), rows["redis"][2])

    def test_an_alias(self) -> None:
        # pifpaf users say mariadb; it is the mysql daemon, named so.
        result = self.cli("run", "mariadb", "--", "sh", "-c", "echo $FIXTURES_DAEMONS_DAEMON")
        self.assertStatus(0, result)
        self.assertEqual("mysql\n", result.stdout)
        self.assertIn("(also: mariadb)", self.cli("list").stdout)

    def test_a_missing_template_file_is_a_usage_error(self) -> None:
        result = self.cli(
            "run", "postgresql", "--template", "/nonexistent/schema.sql", "--", "true"
        )
        self.assertStatus(2, result)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertIn("/nonexistent/schema.sql", result.stderr)

    def test_a_command_without_the_double_dash(self) -> None:
        # As pifpaf takes it: `run redis env`.
        result = self.cli("run", "redis", "sh", "-c", "echo port=$FIXTURES_DAEMONS_REDIS_PORT")
        self.assertStatus(0, result)
        self.assertRegex(result.stdout, r"^port=\d+\n$")

    def test_version(self) -> None:
        result = self.cli("--version")
        self.assertStatus(0, result)
        self.assertRegex(result.stdout, r"^fixtures-daemons \S+\n$")

    def test_did_you_mean(self) -> None:
        for args, suggestion in (
            (("run", "postgrsql", "--", "true"), "did you mean 'postgresql'?"),
            (("lsit",), "did you mean 'list'?"),
            (("run", "redis", "--databse", "3", "--", "true"), "did you mean '--databases'?"),
        ):
            result = self.cli(*args)
            self.assertStatus(2, result)
            self.assertIn(suggestion, result.stderr)
            self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        # Nothing close: no suggestion.
        result = self.cli("run", "postgresql", "--bogus", "--", "true")
        self.assertNotIn("did you mean", result.stderr)

    def test_errors_point_to_the_right_help(self) -> None:
        for args, where in (
            (("run", "postgresql", "--bogus", "--", "true"), "run postgresql"),
            (("run", "postgresql", "--port", "abc", "--", "true"), "run postgresql"),
            (("run", "postgrsql", "--", "true"), "run"),
            (("stop", "--bogus"), "stop"),
            (("cache", "clear", "a", "b"), "cache clear"),
            (("lsit",), ""),
        ):
            result = self.cli(*args)
            self.assertStatus(2, result)
            self.assertIn(
                "(see %s --help)" % " ".join(["fixtures-daemons", where]).strip(), result.stderr
            )

    def test_a_reader_that_goes_away(self) -> None:
        # fixtures-daemons list | head: no traceback, the pipe's status.
        reader, writer = os.pipe()
        os.close(reader)
        try:
            result = subprocess.run(
                CLI + ["list"],
                cwd=base.REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=writer,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(writer)
        self.assertEqual(128 + signal.SIGPIPE, result.returncode, result.stderr)
        self.assertEqual("", result.stderr)

    def test_a_pifpaf_daemon_we_do_not_have(self) -> None:
        result = self.cli("run", "mongodb", "--", "true")
        self.assertStatus(2, result)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertIn("mongodb is one of pifpaf's daemons", result.stderr)
        self.assertIn("Writing your own daemon", result.stderr)

    def test_cache_clear(self) -> None:
        cache = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(CACHE_ENV, cache))
        self.assertStatus(0, self.cli("run", "postgresql", "--", "true"))
        templates = [n for n in os.listdir(cache) if not n.endswith(".lock") and n[0] != "."]
        self.assertEqual(1, len(templates), templates)
        self.assertTrue(templates[0].startswith("postgresql-"), templates)

        # Where it is, what it holds, how big.
        for show in (("cache",), ("cache", "show")):
            result = self.cli(*show)
            self.assertStatus(0, result)
            lines = result.stdout.splitlines()
            self.assertEqual("cache: %s (1 templates)" % cache, lines[0])
            self.assertRegex(lines[1], r"^  %s +\d+\.\d MB  postgres " % templates[0])
            self.assertRegex(lines[2], r"^  total +\d+\.\d MB$")

        result = self.cli("cache", "clear", "redis")
        self.assertStatus(0, result)
        self.assertEqual("", result.stdout)
        result = self.cli("cache", "clear")
        self.assertStatus(0, result)
        self.assertEqual("removed %s\n" % os.path.join(cache, templates[0]), result.stdout)
        self.assertFalse(os.path.exists(os.path.join(cache, templates[0])))
        self.assertEqual("cache: %s (empty)\n" % cache, self.cli("cache").stdout)

    def test_daemon_help_lists_its_options(self) -> None:
        result = self.cli("run", "postgresql", "--help")
        self.assertStatus(0, result)
        for option in ("--database", "--user", "--port", "--settings KEY=VALUE", "--binary"):
            self.assertIn(option, result.stdout)
        self.assertIn("usage: fixtures-daemons run postgresql", result.stdout)
        self.assertIn("PortUnavailable", result.stdout)  # a :class: line continues the text
        # Real metavars and defaults; no Sphinx markup anywhere.
        for shown in ("--port PORT", "--timeout SECONDS", "--template FILE", "--binary PATH"):
            self.assertIn(shown, result.stdout)
        self.assertIn("(default: postgres)", result.stdout)
        self.assertNotIn("``", result.stdout)
        self.assertNotIn(":class:", result.stdout)
        self.assertNotIn("--reuse", result.stdout)


class TestErrors(CliTestCase):
    """One line on stderr, no traceback, a status per kind of error, and
    nothing left running (checked after every test)."""

    def assertError(self, status: int, text: str, *args: object, one_line: bool = True) -> None:
        result = self.cli(*args)
        self.assertStatus(status, result)
        if one_line:
            self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        self.assertTrue(result.stderr.startswith("fixtures-daemons: "), result.stderr)
        self.assertIn(text, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual("", result.stdout)

    def test_unknown_daemon(self) -> None:
        self.assertError(2, "invalid choice: 'nosuch'", "run", "nosuch", "--", "true")

    def test_unknown_option(self) -> None:
        self.assertError(
            2,
            "unrecognized arguments: --no-such-option",
            "run",
            "redis",
            "--no-such-option",
            "--",
            "true",
        )

    def test_bad_key_value(self) -> None:
        self.assertError(
            2, "--settings takes KEY=VALUE", "run", "redis", "--settings", "oops", "--", "true"
        )

    def test_command_after_another_subcommand(self) -> None:
        self.assertError(2, "only run takes a command", "status", "--", "true")

    def test_binary_pointing_nowhere(self) -> None:
        missing = os.path.join(self.work, "no-such-redis-server")
        self.assertError(3, "not found", "run", "redis", "--binary", missing, "--", "true")

    def test_daemon_that_fails_to_start(self) -> None:
        # A "server" that exits at once: the daemon's own failure.
        # Its log's last lines may follow the one-line message.
        self.assertError(
            3,
            "before it was ready",
            *("run", "memcached", "--binary", shutil.which("false") or "/bin/false", "--", "true"),
            one_line=False,
        )

    def test_command_not_found(self) -> None:
        missing = os.path.join(self.work, "no-such-command")
        self.assertError(127, "command not found: " + missing, "run", "redis", "--", missing)

    def test_command_not_executable(self) -> None:
        path = os.path.join(self.work, "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o644)
        self.assertError(126, "command not executable: " + path, "run", "redis", "--", path)


class TestPifpafCompatibility(CliTestCase):
    """``-e PIFPAF`` exports every variable ``pifpaf run`` exports, with
    the same values but for those that must differ (port, temp dir, pid):
    these are replaced by placeholders before comparing."""

    def setUp(self) -> None:
        super().setUp()
        try:
            import pifpaf  # noqa: F401
        except ImportError:
            self.skipTest("pifpaf is not installed (pip install pifpaf): nothing to compare with")
        self.pifpaf = self.pifpafCommand()

    def environments(
        self, daemon: str, pifpaf_args: typing.Sequence[str], ours_args: typing.Sequence[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(pifpaf's variables, ours), both normalised."""
        base_env = dict(os.environ)
        path = os.path.join(self.work, "pifpaf.json")
        pifpaf = subprocess.Popen(
            [self.pifpaf, "run", daemon, *pifpaf_args, "--", sys.executable, "-c", DUMP_ENV, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.work,
            # pifpaf looks for mysqld on PATH only (Debian: /usr/sbin).
            env=dict(base_env, PATH=base_env.get("PATH", os.defpath) + ":/usr/sbin:/sbin"),
        )
        output = pifpaf.communicate(timeout=300)[0].decode("utf-8", "replace")
        self.assertEqual(0, pifpaf.returncode, "pifpaf failed:\n" + output)
        theirs = {k: v for k, v in self.readJson(path).items() if k not in base_env}
        theirs = self.normalise(theirs, str(pifpaf.pid))

        path = os.path.join(self.work, "ours.json")
        cli = self.popenCli(
            "-e", "PIFPAF", "run", daemon, *ours_args, "--", sys.executable, "-c", DUMP_ENV, path
        )
        stdout, stderr = cli.communicate(timeout=300)
        self.assertEqual(0, cli.returncode, stderr)
        ours = {k: v for k, v in self.readJson(path).items() if k not in base_env}
        return theirs, self.normalise(ours, str(cli.pid))

    @staticmethod
    def normalise(env: dict[str, str], pid: str) -> dict[str, str]:
        """Values that must differ between two runs as placeholders: the
        temp dir, paths inside it, the port, the pid."""
        data = env["PIFPAF_DATA"]
        ports = [v for k, v in env.items() if k == "PGPORT" or re.fullmatch(r"PIFPAF_\w+_PORT", k)]
        inside = [
            (v, k)
            for k, v in env.items()
            if v.startswith(data + "/") and "://" not in v and k != "PGDATA"
        ]
        paths = sorted(inside, key=lambda item: -len(item[0]))  # longest first
        out = {}
        for key, value in env.items():
            if key == "PGDATA":  # pifpaf: the temp dir itself; ours: a dir in it
                value = "{PGDATA}" if value == data or value.startswith(data + "/") else value
            elif value == pid:
                value = "{pid}"
            else:
                for path, name in paths:
                    value = value.replace(path, "{%s}" % name)
                value = value.replace(data, "{data}")
                for port in ports:
                    value = re.sub(r"(?<=[:=])%s\b" % re.escape(port), "{port}", value)
                    value = "{port}" if value == port else value
            out[key] = value
        return out

    def assertSameExports(self, theirs: dict[str, str], ours: dict[str, str]) -> None:
        missing = sorted(set(theirs) - set(ours))
        self.assertEqual([], missing, "pifpaf exports these, -e PIFPAF does not")
        different = {k: (theirs[k], ours[k]) for k in theirs if theirs[k] != ours[k]}
        self.assertEqual({}, different, "(pifpaf's, ours)")

    def pifpafPort(self) -> str:
        return str(self.useFixture(PortFixture()).port)

    def test_redis(self) -> None:
        # The same password on both sides (ours makes a random one unless
        # told): the URL forms, password included, are the same.
        password = ["--password", "pw"]
        theirs, ours = self.environments(
            "redis", ["--port", self.pifpafPort(), *password], password
        )
        self.assertEqual("redis://:pw@localhost:{port}", theirs["PIFPAF_URL"])
        self.assertSameExports(theirs, ours)

    def test_memcached(self) -> None:
        if IS_ROOT:
            self.skipTest("pifpaf's memcached driver cannot run as root (memcached needs -u)")
        theirs, ours = self.environments("memcached", ["--port", self.pifpafPort()], [])
        self.assertEqual("memcached://localhost:{port}", theirs["PIFPAF_URL"])
        self.assertSameExports(theirs, ours)

    def test_postgresql(self) -> None:
        if IS_ROOT:
            self.skipTest("pifpaf's PostgreSQL driver cannot run as root (initdb refuses it)")
        theirs, ours = self.environments("postgresql", ["--port", self.pifpafPort()], [])
        self.assertEqual(
            "postgresql://localhost/postgres?host={data}&port={port}", theirs["PIFPAF_URL"]
        )
        self.assertSameExports(theirs, ours)

    def test_mysql(self) -> None:
        if IS_ROOT:
            self.skipTest(
                "pifpaf's MySQL driver is compared as an ordinary user only (as root it runs "
                "mysqld --user=root)"
            )
        # pifpaf's database is called pifpaf, ours test unless told.
        theirs, ours = self.environments("mysql", [], ["--database", "pifpaf"])
        self.assertEqual(
            "mysql://root@localhost/pifpaf?unix_socket={PIFPAF_MYSQL_SOCKET}", theirs["PIFPAF_URL"]
        )
        self.assertSameExports(theirs, ours)


#: What a CLI run of one daemon imports, and what importing the package
#: does: no daemon module it does not use (each costs the run milliseconds).
IMPORT_CHECKER = """
import json, sys
import fixtures_daemons
after_package = sorted(m for m in sys.modules if m.startswith("fixtures_daemons.daemons."))
from fixtures_daemons.integrations import cli
cli.main(["run", "redis", "--", sys.executable, "-c", "pass"])
after_run = sorted(m for m in sys.modules if m.startswith("fixtures_daemons.daemons."))
print("IMPORTS " + json.dumps([after_package, after_run]), flush=True)
"""


class TestImports(base.TestCase):
    def test_a_run_imports_only_its_daemon(self) -> None:
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_CHECKER],
            env=base.python_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [x for x in result.stdout.splitlines() if x.startswith("IMPORTS ")]
        self.assertEqual(1, len(lines), result.stdout + result.stderr)
        after_package, after_run = json.loads(lines[0].split(" ", 1)[1])
        self.assertEqual([], after_package)
        daemons = {name.rsplit(".", 1)[1] for name in after_run}
        self.assertIn("redis", daemons)
        # Redis and what it imports (its server admin, its protocol).
        self.assertEqual(set(), daemons - {"redis", "redis_server", "_resp"})

    def test_an_alias_still_finds_its_daemon(self) -> None:
        self.assertIs(registry.daemon_class("mysql"), registry.daemon_class("mariadb"))
        self.assertEqual("mysql", registry.canonical_name("mariadb"))
        self.assertEqual({"redis"}, registry.own_daemon_names(["run", "redis", "--port", "x"]))
