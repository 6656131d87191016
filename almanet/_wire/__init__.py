"""The almanet wire, pure: message shapes, payload validation, the exception tree, argument rules.

Job: what crosses NSQ as almanet (0.7.0's invocation, reply and discovery bodies, topic and
channel names), how a payload is checked against a procedure's signature and described as JSON
Schema, and the exceptions every layer raises. No I/O, no asyncio, no clock (deadlines are
computed from times passed in).

May import: ``almanet._nsq``'s pure modules (``names``, ``errors``) only.
"""

__all__: list[str] = []
