"""Azəriqaz İB as the simulators play it: the world's gas subscriptions (ehis.simulators.utility)."""

from ehis.simulators.utility import consumption_responder

RESPONDER = consumption_responder("GetGasConsumption", "gas")
