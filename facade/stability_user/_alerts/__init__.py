"""``stability-user watch``'s alerts: the conditions and when each is notified (``_rules``),
the watcher that reads, judges and notifies once a cycle (``_watch``), and where notices go
(``_notify``, Apprise). The command line (``_cli._watch``) only parses and prints.
"""

__all__: list[str] = []
