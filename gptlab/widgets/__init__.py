"""Notebook widgets: thin ipywidgets front ends over pure, tested functions."""
