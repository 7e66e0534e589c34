"""The base of daemons whose isolated namespace is a database.

PostgreSQL and MySQL share everything about databases but the SQL: the
template hook (built once per server and hook input, under a machine-wide
lock), the database an attached fixture gets, ``create_database`` and
``drop_database`` bookkeeping, and a ``reset`` that touches only what the
fixture owns. Their modules implement the four steps that differ.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import typing
import uuid

from fixtures_daemons import locks
from fixtures_daemons.daemon import DaemonFixture

__all__ = ["DatabaseDaemonFixture", "TemplateHook", "hook_key"]

#: A template database hook: an SQL file's path, or a callable that is given
#: a copy of the fixture whose ``database`` (and so ``url``) is the template.
TemplateHook = str | typing.Callable[[typing.Any], None]


def hook_key(template: TemplateHook) -> str:
    """A short hash of what a template hook does: an SQL file's content, or
    a callable's qualified name and source."""
    digest = hashlib.sha256()
    if callable(template):
        digest.update(("%s.%s" % (template.__module__, template.__qualname__)).encode())
        try:
            digest.update(inspect.getsource(template).encode())
        except (OSError, TypeError):
            pass  # no source (a builtin, a REPL function): the name is all we have
    else:
        with open(template, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


class DatabaseDaemonFixture(DaemonFixture):
    """A daemon of databases: attached fixtures get a database each.

    :param database: the database ``url`` points at.
    :param template: prepares a template database once (schema, reference
        data): the path of an SQL file, or a callable given a copy of this
        fixture whose ``database`` (and ``url``) is the template; ``database``
        and every attached fixture's database start as copies of it.
    """

    #: (daemon, host, port, temp dir, template) already seen by this process
    _templates_seen: typing.ClassVar[set[tuple[object, ...]]] = set()

    def __init__(
        self, *, database: str, template: TemplateHook | None = None, **kwargs: typing.Any
    ) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.template = template
        self._template_database: str | None = None
        self._created: list[str] = []

    # -- what each daemon implements -----------------------------------------

    def run_sql(self, sql: str, database: str) -> None:
        """Run SQL statements in ``database``."""
        raise NotImplementedError

    def _database_exists(self, name: str) -> bool:
        raise NotImplementedError

    def _build_template_database(self, name: str) -> None:
        """Make the template database ``name`` with :meth:`run_template_hook`,
        so that it never looks complete before it is."""
        raise NotImplementedError

    def _create_database(self, name: str, source: str | None) -> None:
        """Create ``name``, a copy of the database ``source`` if given."""
        raise NotImplementedError

    def _drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------

    def template_database(self) -> str | None:
        """The name of the template database the hook made, built first if
        needed: once per daemon and hook input, under a machine-wide lock (so
        parallel workers build it once), named by a hash of the hook's input
        (so a changed hook gets a new one). Once this process has seen it on
        a daemon, later fixtures skip the lock and the check."""
        if self.template is None:
            return None
        if self._template_database is None:
            name = "fxd_template_%s" % hook_key(self.template)
            daemon = type(self).daemon_name
            seen = (daemon, self.host, self.port, self.temp_dir, name)
            if seen not in DatabaseDaemonFixture._templates_seen:
                with locks.locked("template-%s-%s-%d-%s" % (daemon, self.host, self.port, name)):
                    if not self._database_exists(name):
                        self._build_template_database(name)
                DatabaseDaemonFixture._templates_seen.add(seen)
            self._template_database = name
        return self._template_database

    def run_template_hook(self, database: str) -> None:
        """Prepare ``database`` with the template hook; an SQL file goes
        through :meth:`run_sql`."""
        template = self.template
        assert template is not None
        if callable(template):
            view = copy.copy(self)
            view.database = database
            template(view)
        else:
            with open(template) as f:
                self.run_sql(f.read(), database)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database, a copy of ``template`` (default: the hook's
        template database, if any); return its name, random unless given.
        :meth:`reset` drops it."""
        name = name or "test_" + uuid.uuid4().hex[:12]
        self._create_database(name, template or self.template_database())
        self._created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database (and forget it, if :meth:`create_database` made
        it)."""
        self._drop_database(name)
        if name in self._created:
            self._created.remove(name)

    def _enter_namespace(self) -> None:
        # Attached to a shared server: a database of our own, random unless
        # one was asked for, made from the template and dropped on cleanUp.
        self._created = []
        self._template_database = None
        self.database = self.create_database(self._init_kwargs.get("database"))
        self.addCleanup(self.drop_database, self.database)

    def reset(self) -> None:
        """Drop ``database`` and every database :meth:`create_database`
        made, and recreate ``database`` from its template: cheap, and safe
        on a server shared with other fixtures."""
        for name in list(self._created):
            self.drop_database(name)
        self.drop_database(self.database)
        self.create_database(self.database)
