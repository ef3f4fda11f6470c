"""ShanghaiTech Campus adapter (weakly-supervised re-split).

W. Liu, W. Luo, D. Lian, S. Gao. "Future Frame Prediction for Anomaly Detection - A New Baseline."
CVPR 2018 (the dataset); J.-X. Zhong et al. "Graph Convolutional Label Noise Cleaner: Train a
Plug-and-play Action Classifier for Anomaly Detection." CVPR 2019 (the weakly-supervised split:
238 training videos, 63 abnormal; 199 test videos, 44 abnormal). Primary metric: frame-level ROC AUC.
"""

from vadbench import hookimpl
from vadbench.datasets.shanghaitech.adapter import ShanghaiTech


@hookimpl
def vadbench_register_datasets(register):
    register("shanghaitech", ShanghaiTech)
