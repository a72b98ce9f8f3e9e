#!/usr/bin/env bash
# Rewrites docs/results/conv-edits.md: every edit of scripts/conv_edits.py on the depth page's
# Fashion-MNIST convnet (seed 0) for classes 0, 3 and 7, against the retrained references that
# scripts/depth.py cached, then the package's own redirect on the ResNet suite's seed 0.
# Usage: scripts/conv_edits.sh MODEL REFERENCES [RESNET RESNET_REFERENCES]  (about 70 min, one core)
set -euo pipefail
model=${1:-runs/depth/models/convnet-s0.safetensors}
refs=${2:-runs/depth/references}
resnet=${3:-runs/depth/models/resnet-s0.safetensors}
resnet_refs=${4:-$refs}
out=docs/results/conv-edits.md
py=${PYTHON:-.venv/bin/python}
cat > "$out" <<'HEAD'
# Closed-form conv-net edits against retraining (issue 35)

Made by `scripts/conv_edits.sh` (each table's command is above it; `--help` of
`scripts/conv_edits.py` says what each edit and column is). The Fashion-MNIST `convnet` of the
depth page, seed 0, its retrained references; every edit is computed *with* 150 training images
per class and applied to the features only (the head is not edited: A_R masks the forget
classes' logits). The question: does an edit move the forget class's KR and prototype (k = 10)
toward the retrained model's while A_R stays within a point of the original's?

What the tables say: no single setting of any edit brings all three classes into the depth
goals' bands (KR and prototype gaps to the retrained model in [-5, +2], A_R within a point of
the original's). Per class some do: per-sample at gamma 8, lambda 10 for class 0, and 50
feature steps for class 3 (whose KR is the retrained model's already). For class 7 none does:
the settings that keep A_R within a point leave its prototype 6.5 points or more above the
retrained model's. Kodge's projection moves nothing; the mean projection and the generalized-eigen
removal at every convolution break the model. Moving every layer at once (network-steps: SCAR's
per-sample targets, the kept images' features anchored) does no better than the last layer
alone: class 3 reaches the retrained model's KR and prototype (84.3 / 78.7 against 85.1 / 79.1)
at A_R -1.04, class 0's KR does not move, and class 7 loses 1 to 6 points of A_R while its KR
stays above 90.

The last three tables measure the package's own redirect (`--edit redirect`, `obliviate.deep`,
its statistics recorded on the same 150 images per class) on the depth page's ResNet (seed 0),
whose edited convolution is a residual block's: moving the residual sum (branch plus shortcut)
instead of the branch alone lowers the prototype attack by 5 to 7.5 points (class 0: 83.0 to 76.0,
class 3: 78.7 to 71.3, class 7: 90.5 to 85.4) at the same A_R, and KR k=10 by up to 2.5.
Redirecting the last block of more stages too, one after the other, takes the class at most
about a point further (class 3: prototype 70.4 with two stages) and costs A_R (all four stages:
-2.5 on class 0 and -14.8 on class 7 against the one-layer edit). On classes 3 and 7 every
setting stays far above the retrained model (prototype 50.9 and 39.1). These three tables were
measured with the earlier kept mixture (the softmax of each class's mean logits); the package
now mixes by each class's mean softmax over the other classes (`obliviate.deep`, the depth
page's ResNet rows), and they have not been measured again with it.
HEAD
for c in 0 3 7; do
  for e in per-sample output-eigen feature-steps network-steps mean-projection kodge generalized-eigen; do
    "$py" scripts/conv_edits.py --model "$model" --references "$refs" --classes "$c" --edit "$e" --out "$out"
  done
done
for c in 0 3 7; do
  "$py" scripts/conv_edits.py --model "$resnet" --references "$resnet_refs" --classes "$c" --edit redirect --out "$out"
done
