"""One history manager class per model, built once.

django-simple-history's ``HistoryDescriptor.__get__`` builds a new manager
class (``Manager.from_queryset``, which inspects every queryset method) on
every access to ``Model.history`` or ``instance.history``, and its post_save
handler makes that access for every history row written: about 0.7 ms of CPU
per row, a fifth of a reviewer's submit. The class depends only on the
descriptor's manager and queryset classes, so it is built once per descriptor;
the manager instance (bound to ``instance``) is still new on every access.
"""

from simple_history.manager import HistoryDescriptor

# Kept so a test can check an upgrade of django-simple-history did not change it.
ORIGINAL_GET = HistoryDescriptor.__get__


def _history_get(self, instance, owner):
    manager_cls = self.__dict__.get("_manager_cls")
    if manager_cls is None:
        manager_cls = self.manager_class.from_queryset(self.queryset_class)
        self._manager_cls = manager_cls
    return manager_cls(self.model, instance)


def history_manager_cached() -> None:
    """Install the cached ``__get__`` (idempotent); called from ``ReviewsConfig.ready``."""
    HistoryDescriptor.__get__ = _history_get
