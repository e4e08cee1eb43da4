"""Bridges to other tuning tools (Ray Tune); each module imports its tool."""
