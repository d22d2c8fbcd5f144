"""The Ministry of Health (Səhiyyə Nazirliyi): referrals issued by medical institutions.

Never cached: a referral issued a minute ago must reach the disability and sanatorium
subsystems at once, and a referral is read rarely enough that asking every time costs little.
A person without referrals is an answer with none; only a FIN nobody holds is NotFound.
"""

from ehis.mapping.queries import FinQuery
from ehis.sources.sehiyye.models import ReferralIssued, Referrals
from ehis.sources.spec import EventFeed, EventKind, Service, Source

REFERRALS = Service("sehiyye.referrals", "GetReferrals", params=FinQuery, model=Referrals,
                    mapper=Referrals.from_contract, cache_ttl=None, answer_subject=("fin",),
                    example={"fin": "E4GMWW2"}, missing={"fin": "0HR5T2K"})

SOURCE = Source.of(__file__, (REFERRALS,), events=EventFeed("push", (
    EventKind("referral-issued", ReferralIssued, ReferralIssued.from_event, invalidates=("sehiyye.referrals",)),
)))
