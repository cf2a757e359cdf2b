"""Chest-radiograph domain: image data, its synthetic stand-in and helpers."""
