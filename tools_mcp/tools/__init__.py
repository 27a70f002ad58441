"""The MCP tools, one module per area, and the knowledge articles as resources; `base` is what they share."""
