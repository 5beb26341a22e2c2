"""Test helpers: a stand-in identity provider, real `ringfence serve` processes, MCP requests."""
