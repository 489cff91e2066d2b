"""The fake's caches: podrunner's validation rules memoised, and one bounded memo type.

The same names, labels, images and quantities recur constantly in a test suite, and so do
whole pod specs, so the fake checks each once. Every cache here has a fixed bound.
"""

from __future__ import annotations

import functools
from typing import Generic, TypeVar

from podrunner import _validation

__all__ = ["Memo", "v"]

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """A dict that forgets everything when full: a cheap bound for caches of recurring inputs.

    Lookups are plain ``dict.get`` calls (the hot path); only a miss pays for :meth:`put`.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (emptying the memo first when full) and return it."""
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


class _Rules:
    """podrunner's rules (``podrunner._validation``), each call memoised."""

    def __init__(self) -> None:
        cache = functools.lru_cache(maxsize=4096)
        self.dns1123_label_error = cache(_validation.dns1123_label_error)
        self.dns1123_subdomain_error = cache(_validation.dns1123_subdomain_error)
        self.label_key_error = cache(_validation.label_key_error)
        self.label_value_error = cache(_validation.label_value_error)
        self.annotation_key_error = cache(_validation.annotation_key_error)
        self.env_name_error = cache(_validation.env_name_error)
        self.container_name_error = cache(_validation.container_name_error)
        self.image_error = cache(_validation.image_error)
        self.quantity_error = cache(_validation.quantity_error)
        self.parse_quantity = cache(_validation.parse_quantity)
        self.config_map_key_error = cache(_validation.config_map_key_error)
        self.restart_policy_error = cache(_validation.restart_policy_error)
        self.annotations_size_error = _validation.annotations_size_error
        self.RESTART_POLICIES = _validation.RESTART_POLICIES
        self.TOTAL_ANNOTATION_SIZE_LIMIT = _validation.TOTAL_ANNOTATION_SIZE_LIMIT
        self.SECRET_DATA_SIZE_LIMIT = _validation.SECRET_DATA_SIZE_LIMIT
        self.MAX_REQUEST_BODY_BYTES = _validation.MAX_REQUEST_BODY_BYTES


v = _Rules()
"""The memoised rules (``v.label_key_error(key)``...), shared by the fake's modules."""
