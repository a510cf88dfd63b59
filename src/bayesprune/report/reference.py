"""Published numbers, shown only as labelled references: the study's test accuracies (its Tables 1 and 2),
Blundell et al.'s (2015) MNIST test errors, the compression results published on LeNet-300-100, and Bayesian
Compression's as its authors' code states them."""

from __future__ import annotations

FRACTIONS = (0.0, 0.5, 0.75, 0.9)
METHOD_LABELS = {"sgd": "SGD", "dropout0.5": "Dropout 0.5", "dropout0.75": "Dropout 0.75",
                 "dropout0.9": "Dropout 0.9", "sgd-l2": "SGD + L2", "dropout0.5-l2": "Dropout 0.5 + L2",
                 "sgd-l1": "SGD + L1", "dropout0.5-l1": "Dropout 0.5 + L1", "sgd-mixture": "MAP, BBB's prior",
                 "bbb": "BBB", "sparsevd": "Sparse VD", "bcgnj": "BC-GNJ"}
PENALTY_LABELS = {"l2": "L2", "l1": "L1", "mixture": "BBB's prior"}
REPORTED = {
    "mnist": {
        "sgd": (0.9783, 0.9753, 0.9586, 0.6943),
        "dropout0.5": (0.9827, 0.9763, 0.9108, 0.2216),
        "dropout0.75": (0.9576, 0.9290, 0.6097, 0.1287),
        "dropout0.9": (0.8663, 0.7493, 0.2537, 0.1960),
        "bbb": (0.9820, 0.9819, 0.9823, 0.9822),
    },
    "fashion-mnist": {
        "sgd": (0.8967, 0.8877, 0.8003, 0.4890),
        "dropout0.5": (0.8756, 0.8765, 0.7595, 0.3436),
        "dropout0.75": (0.8277, 0.8256, 0.5790, 0.2150),
        "dropout0.9": (0.7198, 0.6552, 0.3479, 0.1539),
        "bbb": (0.8925, 0.8941, 0.8934, 0.8962),
    },
}
STUDY_BBB_OVER_SGD = 10.0  # the study's reported training-time ratio (about 50 min against 5 min for 50 epochs, RTX 3080)

# Blundell et al. 2015, Table 2: test error (%) of BBB, 784-1200-1200-10, weights removed by |mu|/sigma.
BLUNDELL_TABLE2 = {0.0: 1.24, 0.5: 1.24, 0.75: 1.24, 0.95: 1.29, 0.98: 1.39}
# Blundell et al. 2015, Table 1: test error (%) at 400 / 800 / 1200 units per hidden layer.
BLUNDELL_TABLE1_UNITS = (400, 800, 1200)
BLUNDELL_TABLE1 = {"SGD": (1.83, 1.84, 1.88), "Dropout": (1.51, 1.33, 1.36),
                   "BBB, Gaussian prior": (1.82, 1.99, 2.04), "BBB, scale mixture": (1.36, 1.34, 1.32)}

# Published LeNet-300-100 (784-300-100-10) results on MNIST: (label, test error %, compression ratio = weights / nonzero).
LENET_ANCHORS = (
    ("Han et al. 2015, dense", 1.64, 1.0),
    ("Han et al. 2015, pruning + retraining", 1.59, 12.0),
    ("Deep Compression (Han et al. 2016)", 1.58, 40.0),
    ("Soft weight sharing (Ullrich et al. 2017)", 1.94, 23.0),
    ("DNS (Guo et al. 2016)", 1.99, 56.0),
    ("Sparse VD (Molchanov et al. 2017)", 1.92, 68.0),
)
SPARSE_VD_LAYER_SPARSITY = (98.9, 97.2, 62.0)  # Molchanov et al. 2017, LeNet-300-100, % of each layer's weights removed
# Louizos, Ullrich and Welling 2017, as their public code's README states it (LeNet-5-Caffe, a convolutional
# network, not one trained here): (method, test error %, compression after pruning, after precision reduction).
BAYESIAN_COMPRESSION_README = (("BC-GNJ", 1.0, 108.0, 361.0), ("BC-GHS", None, 156.0, 419.0),
                               ("Sparse VD", None, 63.0, 228.0))
# Blundell et al. 2015's Table 2 in the same terms: 2 x 1200 units, 98 % removed (50x).
BLUNDELL_COMPRESSION = ("BBB 2 x 1200 (Blundell et al. 2015)", 1.39, 50.0)


def method_label(method: str) -> str:
    """Display name of a method ('dropout0.5' -> 'Dropout 0.5')."""
    if method in METHOD_LABELS:
        return METHOD_LABELS[method]
    base, _, penalty = method.partition("-")
    label = f"Dropout {base.removeprefix('dropout')}" if base.startswith("dropout") else METHOD_LABELS.get(base, base)
    return f"{label} + {PENALTY_LABELS.get(penalty, penalty)}" if penalty else label

