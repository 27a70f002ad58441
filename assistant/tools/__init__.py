"""The assistant acting through the MCP tools: session, routing, dialogue, rendering."""
