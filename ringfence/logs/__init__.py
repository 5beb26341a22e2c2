"""Structured, redacted logs: one pipeline for every logger, request IDs, hashed host identifiers.

See the README's "Logs" section for the line format.
"""
