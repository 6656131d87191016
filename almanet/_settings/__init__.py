"""Settings: every almanet.toml key, the environment overrides, and where each value came from.

Job: find and read the TOML file (with line numbers for errors), validate every key once, and
turn the result into a session's keyword options. Beside the stack: pure, no I/O but reading
the file it is pointed at.

May import: ``almanet._wire`` (errors) and ``almanet._nsq``'s pure modules (``address``, ``options``).
"""

__all__: list[str] = []
