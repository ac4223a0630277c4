"""Offline folium maps of patrol coverage (issue 5): see docs/maps.md and ``maps.build``."""
