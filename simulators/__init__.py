"""servicecast package: simulators."""
