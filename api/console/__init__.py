"""The web console: server-rendered pages for field service, account managers, customers and admins."""
