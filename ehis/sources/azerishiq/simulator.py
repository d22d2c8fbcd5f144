"""Azərişiq ASC as the simulators play it: the world's electricity subscriptions (ehis.simulators.utility)."""

from ehis.simulators.utility import consumption_responder

RESPONDER = consumption_responder("GetElectricityConsumption", "electricity")
