"""UCSD Pedestrian (Ped1, Ped2) adapters with the weakly-supervised random splits.

V. Mahadevan, W. Li, V. Bhalodia, N. Vasconcelos. "Anomaly Detection in Crowded Scenes." CVPR 2010.
Ped2: 16 normal training clips and 12 test clips with anomalies (bikers, skaters, carts); Ped1: 34 and
36. The weak protocol used by RTFM (Tian et al. ICCV 2021, after Zhong et al. CVPR 2019) trains on
6 abnormal + 4 normal clips and tests on the rest, averaging over 10 random splits; no split was
published, so each split is drawn from the ``split`` seed and recorded. Primary metric: frame AUC.
"""

from vadbench import hookimpl
from vadbench.datasets.ucsd_peds.adapter import UCSDPed1, UCSDPed2


@hookimpl
def vadbench_register_datasets(register):
    register("ucsd-ped2", UCSDPed2)
    register("ucsd-ped1", UCSDPed1)
