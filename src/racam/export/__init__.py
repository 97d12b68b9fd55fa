"""Export a trained run's networks to other formats (``racam export``)."""
