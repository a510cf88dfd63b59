"""The networks and the method: Bayes by Backprop, the baselines, the ELBO, pruning and what a trained model is."""
