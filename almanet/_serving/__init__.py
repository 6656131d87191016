"""The serving side: procedures registered on a service, their invocations, the serve loop.

Job: ``Service`` and ``Procedure`` (registration, signatures, discovery), running an invocation
(validation, deadlines, TOUCH, the reply and the FIN), and serving until a signal with a drain.

May import: ``almanet._calling`` (a service is a session that answers), ``almanet._broker``,
``almanet._nsq``, ``almanet._wire``, ``almanet._settings``, ``almanet._runner``.
"""

__all__: list[str] = []
