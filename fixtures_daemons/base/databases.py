"""The base of daemons whose namespace is an SQL database.

PostgreSQL and MySQL share everything about databases but the SQL: the
template hook (built once per server and hook input, under a machine-wide
lock), the database a fixture gets (:class:`~fixtures_daemons.base.namespaces.Database`),
``create_database`` and ``drop_database`` bookkeeping, and a ``reset`` that
touches only what the fixture owns. Their admins (:class:`SqlAdmin`)
implement the SQL.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import typing
import uuid

from fixtures_daemons.base.admin import Admin
from fixtures_daemons.base.daemon import DaemonFixture
from fixtures_daemons.base.namespaces import Database, Namespace
from fixtures_daemons.errors import AdminError, MisuseError
from fixtures_daemons.process import locks

__all__ = ["DatabaseDaemonFixture", "SqlAdmin", "TemplateHook", "hook_key"]

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


class SqlAdmin(Admin):
    """The admin of an SQL daemon: databases, and SQL run in them."""

    def run_sql(self, sql: str, database: str) -> None:
        """Run SQL statements in ``database``."""
        raise NotImplementedError("%s.run_sql" % type(self).__name__)

    def build_template(self, name: str, fill: typing.Callable[[str], None]) -> None:
        """Make the template database ``name``: an empty database given to
        ``fill``, which never looks complete before it is (built under
        another name and moved in whole)."""
        raise NotImplementedError("%s.build_template" % type(self).__name__)


class DatabaseDaemonFixture(DaemonFixture):
    """A daemon of databases: attached fixtures get a database each.

    :param database: the database ``url`` points at.
    :param template: prepares a template database once (schema, reference
        data): the path of an SQL file, or a callable given a copy of this
        fixture whose ``database`` (and ``url``) is the template; ``database``
        and every attached fixture's database start as copies of it.
    """

    namespace = Database
    admin_class: typing.ClassVar[type[Admin]] = SqlAdmin
    #: The database a freshly started server already has (none: None).
    default_database: typing.ClassVar[str | None] = None

    #: (daemon, host, port, temp dir, template) already seen by this process
    _templates_seen: typing.ClassVar[set[tuple[object, ...]]] = set()

    def __init__(
        self, *, database: str, template: TemplateHook | None = None, **kwargs: typing.Any
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(template, str) and not os.path.isfile(template):
            # Before anything starts, not after the server is up.
            raise MisuseError(
                self.daemon_name,
                "%s(template=%r)" % (type(self).__name__, template),
                "no such file: the template hook is an SQL file's path or a callable",
            )
        self.requested_database = database
        self.template = template
        self._template_database: str | None = None
        self._created: list[str] = []

    @property
    def database(self) -> str:
        """The database this fixture owns (``url`` points at it)."""
        if self._endpoint is not None:
            return self._endpoint.database
        return self.requested_database

    @property
    def sql(self) -> SqlAdmin:
        return typing.cast(SqlAdmin, self.admin)

    def owned_namespace(self) -> Namespace:
        # A server of its own: ``database`` made at start (from the template),
        # unless it is the one a fresh server has and there is no template.
        return Database(
            self,
            self.requested_database,
            exists=self.requested_database == self.default_database,
            daemon_is_ours=True,
        )

    def attached_namespace(self) -> Namespace:
        # On a shared server: a database of our own, random unless one was
        # asked for. With reuse=, ``database`` is the named daemon's own
        # (made when it started): the fixture gets a random one beside it.
        return Database(self, None if self.reuse else self.arguments.get("database"))

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
            server = self.server_endpoint
            seen = (self.daemon_name, server.host, server.port, server.directory, name)
            if seen not in DatabaseDaemonFixture._templates_seen:
                lock = "template-%s-%s-%s-%s" % (self.daemon_name, server.host, server.port, name)
                with locks.locked(lock):
                    if not self.sql.database_exists(name):
                        self.sql.build_template(name, self.run_template_hook)
                DatabaseDaemonFixture._templates_seen.add(seen)
            self._template_database = name
        return self._template_database

    def run_template_hook(self, database: str) -> None:
        """Prepare ``database`` with the template hook; an SQL file goes
        through the admin's ``run_sql``."""
        template = self.template
        assert template is not None
        if callable(template):
            view = copy.copy(self)
            view._endpoint = self.server_endpoint.replace(database=database)
            template(view)
        else:
            with open(template) as f:
                sql = f.read()
            try:
                self.sql.run_sql(sql, database)
            except AdminError as exc:
                raise AdminError(
                    self.daemon_name, "the template %s" % template, exc.reason
                ) from exc

    def _clear_state(self) -> None:
        super()._clear_state()
        self._template_database = None
        self._created = []

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database, a copy of ``template`` (default: the hook's
        template database, if any); return its name, random unless given.
        :meth:`reset` drops it."""
        name = name or "test_" + uuid.uuid4().hex[:12]
        self.sql.create_database(name, template or self.template_database())
        self._created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database (and forget it, if :meth:`create_database` made
        it)."""
        self.sql.drop_database(name)
        if name in self._created:
            self._created.remove(name)

    def run_sql(self, sql: str, database: str | None = None) -> None:
        """Run SQL statements in ``database`` (default: this fixture's)."""
        self.sql.run_sql(sql, database or self.database)

    def reset(self) -> None:
        """Drop every database :meth:`create_database` made, and recreate
        ``database`` from its template: cheap, and safe on a server shared
        with other fixtures."""
        for name in list(self._created):
            self.drop_database(name)
        super().reset()
