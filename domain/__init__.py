"""The domain: citizens, protocols, payments and appointments, as the MCP tools (`tools_mcp`) and the
agents' console act on them.
"""
