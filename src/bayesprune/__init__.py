"""bayesprune: does Bayes by Backprop survive heavy pruning better than SGD and dropout?"""

from bayesprune.config import RunConfig

__all__ = ["RunConfig"]
__version__ = "0.1.0"
