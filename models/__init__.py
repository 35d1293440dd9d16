"""servicecast package: models."""
