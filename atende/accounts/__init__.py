"""The staff accounts' faces: their HTTP routes, the sign-in and account pages, and `atende users|teams|tokens`.

The accounts themselves (users, teams, roles, sessions, tokens, the permission table) are `core.accounts`.
"""
