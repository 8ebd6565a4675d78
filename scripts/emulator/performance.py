"""Speed-ups of moto that change no answer, for estates of a thousand apps.

Moto finds an account's backend through ``BackendDict.__getitem__``, which every time
takes a lock global to the server and scans the list of known accounts before it
answers, although the backend exists after the first request of the account. Code
that looks a backend up per item (an instance per target of a target group, a tag
per resource) then serialises every concurrent request of every account behind that
lock. Here a backend that exists is returned at once; the first lookup of an account
still creates it under moto's lock.

Moto's server also picks the service of every request under one lock, and on the way
lists moto's package directory (a directory scan per request, ``list_of_moto_modules``).
The directory does not change while the server runs: it is listed once.
"""

from __future__ import annotations


def install() -> None:
    import moto.backends as backends
    from moto.core.base_backend import BackendDict

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


    original = BackendDict.__getitem__

    def getitem(self, account_id):  # type: ignore[no-untyped-def]
        if dict.__contains__(self, account_id):
            return dict.__getitem__(self, account_id)
        return original(self, account_id)

    BackendDict.__getitem__ = getitem
