"""servicecast package: fleet."""
