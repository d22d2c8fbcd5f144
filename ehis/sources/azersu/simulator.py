"""Azərsu ASC as the simulators play it: the world's water subscriptions (ehis.simulators.utility)."""

from ehis.simulators.utility import consumption_responder

RESPONDER = consumption_responder("GetWaterConsumption", "water")
