"""``aiges.concurrent`` of the upstream SDK: pools the ailab wrappers keep workers in."""
