"""What removes or shrinks weights: pruning criteria and what a pruned network costs to store."""
