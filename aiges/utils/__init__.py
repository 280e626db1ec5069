"""Compatibility package: ``aiges.utils.log`` as upstream Python wrappers import it."""
