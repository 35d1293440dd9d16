"""Sparkplug B primary host application: protobuf births, deaths and data into the ingest pipeline."""
