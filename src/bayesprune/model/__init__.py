"""The networks and their objectives: Bayes by Backprop, the baselines, priors and penalties, the ELBO."""
