"""Tests for the fleet simulator."""
