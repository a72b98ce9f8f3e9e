"""Recoverable forgetting (LIRF, Ye et al.): deposit classes' knowledge into separate modules,
ship the target network without it, and withdraw it again later.

The front door::

    from obliviate.recoverable import deposit_bundle, withdraw, save_module, load_module
    target, modules, _ = deposit_bundle(bundle, dataset, [[0, 1]])
    recovered = withdraw(target, modules)
"""

from obliviate.recoverable.api import (
    deposit_bundle,
    deposit_records,
    load_module,
    save_module,
    withdraw,
)
from obliviate.recoverable.lirf import (
    Deposit,
    DepositModule,
    LIRFSettings,
    RecoverNet,
    deposit,
    lirf_accuracy,
)
from obliviate.recoverable.pruning import (
    PrunedFront,
    apply_pruning,
    filter_l1_norms,
    prune_front,
    pruning_plan,
    split_network,
)

__all__ = [
    "Deposit", "DepositModule", "LIRFSettings", "PrunedFront", "RecoverNet", "apply_pruning",
    "deposit", "deposit_bundle", "deposit_records", "filter_l1_norms", "lirf_accuracy",
    "load_module", "prune_front", "pruning_plan", "save_module", "split_network", "withdraw",
]
