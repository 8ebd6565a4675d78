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

An EC2 object's tags (``TaggedEC2Resource.get_tags``, called for every instance a
DescribeInstances filter or answer looks at) are found by scanning every tag of the
region for the object's id, so describing N tagged instances costs N times all the
tags of the account. The tag store is a map by resource id: the object's tags are
read from it directly, in the same order and shape.
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

    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self):  # type: ignore[no-untyped-def]
        resource_id = self.id
        if not resource_id:
            return []
        tags = dict(self.ec2_backend.tags.get(resource_id, {}))
        resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [
            {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in tags.items()
        ]

    TaggedEC2Resource.get_tags = get_tags
