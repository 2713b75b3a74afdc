"""The one exception type the command-line front doors turn into a single ``error: ...`` line."""


class TexnetsError(Exception):
    """A user-facing problem (bad file, bad name, bad config) whose message is the whole story."""
