"""Errors a user can cause. The CLI prints them as one `error:` line and exits 2; pages show them."""


class UserError(Exception):
    """Something the user asked for cannot be done; the message says what and how to fix it."""


class DatasetError(UserError):
    """A dataset id is unknown, or a folder is in no supported layout / is broken."""


class ModelError(UserError):
    """A model id is unknown, or its weights cannot be found or loaded."""


class ImageDecodeError(UserError):
    """A file is not an image we accept (format, size, corruption)."""


class Stopped(Exception):
    """A job was asked to stop (cancel) and stopped at its next step; training keeps its last complete epoch."""


class Interrupted(Exception):
    """A job's processes died under it (a rank killed, the machine restarted): it can resume from its last
    complete epoch."""
