"""Tier 4, monitoring: accuracy per model version, drift alerts, HITL/HOTL advice, dashboard."""
