"""Operational protections on the HTTP path."""
