"""servicecast package: servicecast."""
