"""Model monitoring: realized quality of past scorings and drift of model inputs."""
