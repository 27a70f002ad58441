"""Domain services (citizens, protocols, payments, appointments) and the MCP server over them."""
