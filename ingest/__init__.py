"""servicecast package: ingest."""
