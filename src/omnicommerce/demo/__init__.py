"""The demo retailer: a deterministic, realistic data set for trying the platform."""
