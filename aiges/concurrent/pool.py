from abc import ABC


class Pool(ABC):  # noqa: B024 (upstream's empty base)
    """Base of the SDK's pools."""
