"""The data contract: canonical schemas, loaders, column mapping, validation and the simulator."""
