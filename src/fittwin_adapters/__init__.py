"""FitTwin adapters and the composition root.

>>> from fittwin_adapters import connect
>>> ft = connect()   # the embedded default: memory store, memory:// objects, fake payments
"""

from fittwin_adapters.connect import connect
from fittwin_adapters.disabled import NoKeyRing, NoPayments

__all__ = ["NoKeyRing", "NoPayments", "connect"]
