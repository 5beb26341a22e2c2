"""``ringfence scan``: a black-box security review of any MCP server over HTTP, by the rules ringfence's own
resource server follows (MCP authorization, RFC 9728, RFC 8414, RFC 6750, RFC 8707, the Apps SDK guide)."""
