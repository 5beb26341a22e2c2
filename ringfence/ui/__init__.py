"""What ringfence serves for widgets: the host bridge every widget gets, the confirmation card, and
the metadata both host forms read (MCP Apps ``_meta.ui``, OpenAI ``openai/*``)."""
