"""Synthetic Pinnacle databases for tests, demos and benchmarks: never real patient data.

`generate_database` writes a database from a seed; `evolve_database` plays one clinical day on it.
`generate_physics` writes a PinnacleSiteData tree with the machines its plans name; `evolve_database` on that tree
recommissions one machine a day.
"""

from rtvault.demo.evolve import EvolveResult, evolve_database
from rtvault.demo.generate import generate_database
from rtvault.demo.physics import PhysicsTree, generate_physics
from rtvault.demo.spec import GeneratedDatabase, ImageSetSpec, PatientSpec, PlanSpec

__all__ = [
    "EvolveResult",
    "GeneratedDatabase",
    "ImageSetSpec",
    "PatientSpec",
    "PhysicsTree",
    "PlanSpec",
    "evolve_database",
    "generate_database",
    "generate_physics",
]
