"""The staff console: sign-in with roles, dashboard, gifts, donors, offline gifts, funds, audit."""
