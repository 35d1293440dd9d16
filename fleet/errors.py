"""Domain errors of the shared kernel; the API and the CLI map them to answers."""


class ServicecastError(Exception):
    """Base of every domain error; `code` is stable for clients."""

    code = "error"


class NotFound(ServicecastError):
    """An object that does not exist for the caller."""

    code = "not_found"


class CustomerNotFound(NotFound):
    """No customer with that tenant id."""

    code = "customer_not_found"


class MachineNotFound(NotFound):
    """No machine with that id for the tenant."""

    code = "machine_not_found"


class AlreadyExists(ServicecastError):
    """An object with the same natural key exists already."""

    code = "already_exists"


class InvalidInput(ServicecastError):
    """A value that does not meet the contract."""

    code = "invalid_input"


class ArchiveUnreadable(ServicecastError):
    """A registered archive file that cannot be read (missing, truncated, corrupt, not permitted)."""

    code = "archive_unreadable"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path  # where the file is; the message names it only within the archive, for clients

    def one_line(self) -> str:
        """For an operator: the message, the file's full path and the reader's own words."""
        return f"{self} ({self.path}: {self.__cause__})"


class ArchiveStoreTaken(ServicecastError):
    """Another database with this database's archive store id (a copy of it, or the one it was restored from)
    wrote the store's folder since this one did: both would sweep and erase each other's files."""

    code = "archive_store_taken"


class ArchiveStoreCopied(ArchiveStoreTaken):
    """This database is a copy of the one that owns its archive store (same store id, another database): its
    sweeps, expiries and erasures would delete the owner's files."""

    code = "archive_store_copied"


class ErasureUndone(ServicecastError):
    """The database holds a customer the archive's erasure ledger lists as erased: it was put back from a copy
    older than the erasure (or the erasure did not complete); archiving its rows would bring them back."""

    code = "erasure_undone"


class ErasureLedgerUnreadable(ErasureUndone):
    """A file of the archive's erasure ledger that is not an entry (corrupt, truncated, edited): whether the
    database holds an erased customer cannot be told, so archiving stops as for one it holds."""

    code = "erasure_ledger_unreadable"


def reason(exc: BaseException) -> str:
    """An error's reason in one line: a database error's driver message, without its SQL and parameters."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
