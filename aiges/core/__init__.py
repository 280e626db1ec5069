"""Compatibility package: ``aiges.core.types`` as upstream Python wrappers import it."""
