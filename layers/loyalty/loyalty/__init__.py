"""Loyalty points on expiring lots: the code shared by every function (shipped as a Lambda layer)."""
