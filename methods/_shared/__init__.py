"""What the built-in methods share: the one place a method package takes code from besides vadbench itself.

A method package (``vadbench.methods.rtfm``, ...) imports vadbench's API and this package, never another
method's package (tests/unit/test_methods_shared.py checks it), so that a method's numbers move only when
its own code or a helper it imports from here changes. Whatever two methods compute alike lives here
once, named for what it does; what differs between their public codes is an explicit argument (as
`losses.binary_cross_entropy`'s ``saturated``), never a second copy.

Changing what a helper here computes changes the numbers of every method that imports it, so such a
change bumps the ``revision`` of each of them (``grep -rn HELPER methods/`` lists them).

- `checks`: range checks of the options (each ``Config.__post_init__``).
- `tensors`: the working precision and the crop layout of feature tensors.
- `losses`: binary cross-entropy in the working precision, the MIL ranking hinge, smoothness and sparsity.
- `selection`: dropout masks and the top-k snippets of each video.
- `blocks`: attention computed a block of query rows at a time (memory linear in a video's length).
- `transformer`: the global + fixed-local attention transformer layer (UR-DMU, BN-WVAD).
- `checkpoints`: renaming a public code's checkpoint keys into a model's (each ``public_checkpoint``).
- `widths`: the rules by which the default widths follow narrow features and the training segments short
  videos (each ``Config.for_data``).
"""
