"""UCF-Crime adapter.

W. Sultani, C. Chen, M. Shah. "Real-world Anomaly Detection in Surveillance Videos." CVPR 2018.
1,900 untrimmed surveillance videos, 13 anomaly classes; weakly-supervised split of 1,610 training
videos (810 abnormal, 800 normal) and 290 test videos (140 abnormal, 150 normal) with frame-level
test annotations. Primary metric: frame-level ROC AUC.
"""

from vadbench import hookimpl
from vadbench.datasets.ucf_crime.adapter import UCFCrime


@hookimpl
def vadbench_register_datasets(register):
    register("ucf-crime", UCFCrime)
