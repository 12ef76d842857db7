"""Validators generated from the schemas by :mod:`fetchplan.schemas._generate`; not edited."""
