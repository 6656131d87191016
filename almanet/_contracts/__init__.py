"""Contracts: a bus's procedures as an AsyncAPI 3 document, the compatibility of two documents,
typed Python stubs generated from one.

Pure (rank 0, beside ``_wire``): documents are built from discovery descriptions (the dicts a
procedure sends, ``Procedure.describe``), so the same code serves a module read without a broker
and a live bus read through discovery. May import ``_wire`` only; the CLI does the I/O.
"""

__all__: list[str] = []
