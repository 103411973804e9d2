"""Fulfillment: order sourcing and routing, ship from DC or store, BOPIS, curbside, same-day, returns."""
