"""OAuth 2.1 resource server: protected-resource metadata, token verification, the MCP gate."""
