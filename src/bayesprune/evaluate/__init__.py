"""What scores a network: accuracy and the pruning sweep, uncertainty, and whether the posterior learned."""
