"""The embedded OAuth 2.1 authorization server: Authlib grants behind a Starlette adapter of ours."""
