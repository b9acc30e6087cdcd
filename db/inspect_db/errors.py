"""Errors of the records layer. Each one says what went wrong, where, and what to do.

All derive from :class:`inspect_core.errors.InspectError`, so the command line turns them into a
message and exit code 2. A station catches :class:`DatabaseUnavailable` to journal locally and
retry later.
"""

from __future__ import annotations

from inspect_core.errors import InspectError


class RecordsError(InspectError):
    """Base class of every error raised by the ``db`` package."""


class DatabaseUnavailable(RecordsError):
    """The database cannot be reached (server down, wrong host, unwritable file...).

    Transient from a station's point of view: keep the inspection and try again later.
    """


class SchemaOutdated(RecordsError):
    """The database holds an older (or newer) schema than this version of inspect expects."""


class UnknownStation(RecordsError):
    """A report asked for a station the database has never recorded."""


class BadFilter(RecordsError):
    """A report filter (``--since``, ``--until``, ``--verdict``...) cannot be understood."""


class DatabaseUnreadable(RecordsError):
    """The ``--db`` file is not an SQLite database (a text file, random bytes, an encrypted
    database) or is damaged. Waiting does not fix it: someone has to point ``--db`` elsewhere,
    restore a backup or move the file aside."""


class ReviewError(RecordsError):
    """An operator's request cannot be carried out as asked (an unknown item or region, a
    label that does not fit, a user that exists already...): nothing was written."""


class UnknownItem(ReviewError):
    """The inspection, region or user named does not exist."""


class DecisionConflict(ReviewError):
    """Someone else decided the item after the page was loaded: nothing was written; reload
    the item to see their decision, then decide again if it needs to change."""


class DatabaseMissing(RecordsError):
    """A command that uses an existing database was given one that does not exist (a SQLite
    file that is not there, a PostgreSQL database not created): a mistyped ``--db``, most
    often. Nothing was created; the message names the file and how to create a database."""


class BadDatabaseURL(RecordsError):
    """The database URL cannot be used as written (two slashes before a SQLite file, a file
    name without ``sqlite:///``, an unknown scheme or driver...); the message shows the right
    form."""
