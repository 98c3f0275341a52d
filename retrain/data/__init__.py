"""Candle sources and validation: everything before features."""
