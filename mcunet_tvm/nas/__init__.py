"""TinyNAS for mcunet-tvm: search-space optimisation and one-shot architecture search whose memory
constraints come from the compiler's own planner (``light.py``).

Modules: ``mcu`` (presets and budgets), ``space`` (the MBConv search space and net configs),
``light`` (the planner on a light program), ``data`` (demo and image-folder datasets),
``supernet`` (weight-shared elastic network, subnet extraction), ``train`` (supernet / plain
training, DDP, BatchNorm re-calibration), ``search`` (space optimisation, evolution, baseline),
``plots``, ``cli`` (``python -m mcunet_tvm.nas``).
"""
