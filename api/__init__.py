"""servicecast package: api."""
