"""The MCP server over the domain (`domain`): its tools, bearer tokens and HTTP transport."""
