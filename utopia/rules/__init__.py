"""The business rules: small pure state classes, one concern each, that the dataflows' keyed steps apply."""
