"""Tools around the dataflows: the generator, the demo and the live dashboard, pictures, schemas and benchmarks."""
