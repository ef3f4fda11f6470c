"""RTFM's 2048-d features: the I3D-ResNet50 of Tushar-N/pytorch-resnet3d, avgpool after layer4."""
