"""`ehis catalogue`: what the hub offers, read from the statute's table, the source registry,
the access policy and the settings: every system and service, whether this hub serves it, its
parameters, its cache lifetime, its providers, and which subsystems may call it."""

from __future__ import annotations

from typing import Any

from ehis import catalogue
from ehis.config import Settings
from ehis.policy import AccessPolicy
from ehis.sources import sources


def params_of(model: Any) -> list[dict[str, Any]]:
    """A params model's fields as a caller writes them: name (the alias), type, required."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    out = []
    for name, field in schema.get("properties", {}).items():
        kinds = [t.get("format") or t.get("type") for t in field.get("anyOf", [field]) if t.get("type") != "null"]
        out.append({"name": name, "type": "|".join(k for k in kinds if k) or "any", "required": name in required})
    return out


def inventory(settings: Settings) -> list[dict[str, Any]]:
    """One entry per system of the statute, with its services."""
    built = sources()
    served = set(settings.serve_sources) if settings.serve_sources is not None else set(built)
    policy = AccessPolicy(settings.access)
    systems = []
    for entry in catalogue.SYSTEMS:
        source = built.get(entry.code)
        services = []
        for item in entry.services:
            spec = source.service(item.name) if source is not None else None
            services.append({
                "name": item.name,
                "summary": item.summary,
                "built": spec is not None,
                "served": spec is not None and entry.code in served,
                "params": params_of(spec.params) if spec is not None else [],
                "cache_ttl_s": spec.cache_ttl if spec is not None else None,
                "example": dict(spec.example) if spec is not None else None,
                "callers": sorted(c for c in settings.access if policy.allows(c, item.name)),
            })
        systems.append({"code": entry.code, "body": entry.body, "english": entry.english,
                        "built": source is not None,
                        "providers": list(source.providers) if source is not None else [],
                        "services": services})
    systems.append(_composites(settings, built, served, policy))
    return systems


def _composites(settings: Settings, built: dict, served: set[str], policy: AccessPolicy) -> dict[str, Any]:
    """The composite services as one more "system": served when the sources they need are."""
    from ehis.composites import COMPOSITES

    def available(name: str) -> bool:
        return all(n.split(".")[0] in served and n.split(".")[0] in built for n in COMPOSITES[name].needs)

    return {"code": catalogue.COMPOSITE, "body": "the hub itself", "english": "composite services", "built": True,
            "providers": [], "services": [{
                "name": entry.name, "summary": entry.summary, "built": True, "served": available(entry.name),
                "params": params_of(COMPOSITES[entry.name].params), "cache_ttl_s": None,
                "example": dict(COMPOSITES[entry.name].example),
                "callers": sorted(c for c in settings.access if policy.allows(c, entry.name)),
            } for entry in catalogue.COMPOSITES]}


def render(systems: list[dict[str, Any]]) -> str:
    """The inventory as text for a terminal."""
    lines = []
    for system in systems:
        providers = f"  providers: {', '.join(system['providers'])}" if system["providers"] else ""
        lines.append(f"{system['code']}  {system['body']} ({system['english']}){providers}")
        for s in system["services"]:
            if not s["built"]:
                lines.append(f"  {s['name']:<28} not built (answers not_served)")
            else:
                state = "served" if s["served"] else "not served here"
                params = ", ".join(f"{p['name']}{'' if p['required'] else '?'}: {p['type']}" for p in s["params"])
                ttl = "parts cached as they are" if system["code"] == catalogue.COMPOSITE else (
                    "never cached" if not s["cache_ttl_s"] else f"cached {_duration(s['cache_ttl_s'])}")
                lines.append(f"  {s['name']:<28} {state}; {ttl}; params ({params or '-'})")
            lines.append(f"  {'':<28} {s['summary']}; callers: {', '.join(s['callers']) or 'none'}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
